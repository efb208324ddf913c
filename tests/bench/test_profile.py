"""The profile's layers (bench/profile.py): which layer a py-spy sample is charged to.

A sample is charged to the innermost frame of a known layer, generic frames (asyncio…) going
to their caller; these pin the rules the benchmark's profile-by-layer tables rest on.
"""

from __future__ import annotations

import pytest

from bench import profile

# Frames as py-spy's raw format writes them: "function (path:line)", root first.
LOOP = ["<module> (gateway/__main__.py:4)", "asyncio_run (uvicorn/_compat.py:30)",
        "run (asyncio/runners.py:118)"]


def frame(path: str, function: str = "f") -> str:
    return f"{function} ({path}:12)"


@pytest.mark.parametrize(("innermost", "layer"), [
    (frame("gateway/graph/listing.py", "_concat_forward"), profile.MERGING),
    (frame("gateway/graph/listing.py", "_MergeWalk.next"), profile.MERGING),
    (frame("gateway/graph/plain.py", "object_reader.<locals>.read"), profile.RESOLVERS),
    (frame("gateway/sources/axim.py", "AximAdapter._read"), profile.RECORDS),
    (frame("gateway/upstream/client.py", "SourceClient.get"), profile.CLIENT),
    (frame("gateway/upstream/client.py", "SourceClient._decode"), profile.DECODE),
    (frame("gateway/upstream/network.py", "NetworkTransport.handle_async_request"),
     profile.CLIENT),
    (frame("gateway/upstream/network.py", "_Connection.data_received"), profile.CLIENT),
    (frame("gateway/upstream/dedup.py"), profile.POLICY),
    (frame("gateway/upstream/retry.py"), profile.POLICY),
    (frame("strawberry/schema/schema.py", "Schema.execute"), profile.EXECUTION),
    (frame("graphql/execution/execute.py"), profile.EXECUTION),
    (frame("graphql/language/parser.py"), profile.PARSE),
    (frame("gateway/edge/bodies.py", "result_body"), profile.ENCODING),
    (frame("gateway/edge/bodies.py", "json_error"), profile.ENDPOINT),
    (frame("uvicorn/protocols/http/httptools_impl.py", "RequestResponseCycle.send"),
     profile.HTTP),
])
def test_the_innermost_known_frame_names_the_layer(innermost: str, layer: str) -> None:
    charged, to = profile.layer_of([*LOOP, frame("gateway/edge/endpoint.py"), innermost])
    assert charged == layer
    assert to.split(" (")[0] == innermost.split(" (")[0]


def test_merging_is_charged_before_the_generic_graph_rule() -> None:
    resolver = frame("gateway/graph/resolvers.py", "product_groups")
    listing = frame("gateway/graph/listing.py", "merged")
    assert profile.layer_of([*LOOP, resolver, listing])[0] == profile.MERGING
    assert profile.layer_of([*LOOP, listing, resolver])[0] == profile.RESOLVERS
    prefixes = [prefix for prefix, _, _ in profile.RULES]
    assert prefixes.index("gateway/graph/listing.py") < prefixes.index("gateway/graph/")


def test_generic_frames_go_to_their_caller() -> None:
    """asyncio inside the merge (a task gathered) is the merge's; inside the network, the
    client's."""
    listing = frame("gateway/graph/listing.py", "_total")
    gather = frame("asyncio/tasks.py", "gather")
    assert profile.layer_of([*LOOP, listing, gather, frame("<frozen abc>")]) == (
        profile.MERGING, "_total (gateway/graph/listing.py)")
    reader = frame("gateway/upstream/network.py", "_Connection.exchange")
    assert profile.layer_of([*LOOP, reader, frame("asyncio/futures.py")])[0] == profile.CLIENT


def test_the_loops_own_code_is_the_event_loop_not_http() -> None:
    """uvloop's C code (polling, socket reads) samples as the frame that runs the loop."""
    assert profile.layer_of(LOOP) == (profile.OTHER, "asyncio_run (uvicorn/_compat.py)")
    server = frame("uvicorn/server.py", "Server.serve")
    assert profile.layer_of([*LOOP, server])[0] == profile.HTTP


def test_every_rule_names_a_listed_layer() -> None:
    assert {layer for _, _, layer in profile.RULES} <= set(profile.LAYERS)
    assert profile.MERGING in profile.LAYERS


def test_by_layer_sums_the_raw_lines() -> None:
    raw = "\n".join([
        ";".join([*LOOP, frame("gateway/graph/listing.py", "merged")]) + " 3",
        ";".join([*LOOP, frame("gateway/sources/joptic.py", "_group")]) + " 2",
        ";".join([*LOOP, frame("gateway/graph/listing.py", "merged")]) + " 1",
        ";".join(LOOP) + " 4",
        "not a sample line",
    ])
    layers, frames, total = profile.by_layer(raw)
    assert total == 10
    assert layers == {profile.MERGING: 4, profile.RECORDS: 2, profile.OTHER: 4}
    assert frames["merged (gateway/graph/listing.py)"] == 4
    text = profile.markdown("`merged`, upstream caches off", raw, 5)
    assert "| merging (gateway/graph/listing.py) | 40% |" in text


def test_shared_work_and_connecting_have_their_layers() -> None:
    memo = frame("gateway/shared.py", "SharedTasks.run")
    assert profile.layer_of([*LOOP, memo, frame("asyncio/tasks.py", "shield")])[0] == (
        profile.POLICY)
    connect = frame("gateway/upstream/network.py", "_Pool._connect")
    assert profile.layer_of([*LOOP, connect, frame("socket.py")])[0] == profile.CLIENT


def test_generated_and_address_parsing_frames_go_to_their_caller() -> None:
    """A dataclass's generated __init__ builds its caller's record; httpx parses the host."""
    build = frame("gateway/sources/axim.py", "_product")
    init = "__create_fn__.<locals>.__init__ (<string>:2)"
    assert profile.layer_of([*LOOP, build, init])[0] == profile.RECORDS
    parse = frame("httpx/_urlparse.py", "encode_host")
    ip = frame("ipaddress.py", "_BaseV4._ip_int_from_string")
    assert profile.layer_of([*LOOP, parse, ip])[0] == profile.CLIENT


def test_an_adapters_msgspec_decoding_is_the_json_decode() -> None:
    """SourceAdapter.decode (gateway/sources/base.py) decodes an answer's bytes straight into
    typed records in msgspec's C code, so its samples are the JSON decode's, not record
    building's; the adapter's own code around it, and base.py's other frames, build records."""
    read = frame("gateway/sources/axim.py", "AximAdapter._groups_page")
    decode = frame("gateway/sources/base.py", "SourceAdapter.decode")
    assert profile.layer_of([*LOOP, read, decode]) == (
        profile.DECODE, "SourceAdapter.decode (gateway/sources/base.py)")
    assert profile.layer_of([*LOOP, decode, read])[0] == profile.RECORDS
    ordered = frame("gateway/sources/table.py", "GroupTable.ordered")
    assert profile.layer_of([*LOOP, read, ordered])[0] == profile.RECORDS
    rules = [(prefix, name) for prefix, name, _ in profile.RULES]
    assert rules.index(("gateway/sources/base.py", "decode")) < rules.index(
        ("gateway/sources/", None))
