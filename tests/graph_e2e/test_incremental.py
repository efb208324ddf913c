"""@defer and @stream over HTTP, on real sockets over the emulators, one source slowed by 2 s.

The fast sources' part comes first, before the slow source answers; the slow source's part
follows; merged, the parts are the answer the same query gets without the directives, in both
formats (and as events of an event stream). A client that takes no answer in parts gets the
whole answer at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RunningEmulator, RunningGateway
from tests.graph_e2e.conftest import Emulators, set_latency
from tests.graph_e2e.incremental_client import (
    DEFER_SPEC,
    INCREMENTAL_SPEC,
    fetch,
    merged,
)
from tests.helpers import post

SLOW_MS = 2000
FORMATS = [DEFER_SPEC, INCREMENTAL_SPEC]

DEFERRED = """query Catalogue {
  groups: productGroups(first: 3) { totalCount nodes { id name } }
  ... @defer(label: "slow") { products(first: 3) { nodes { id name sku } } }
}"""
PLAIN = DEFERRED.replace('... @defer(label: "slow") {', "... {")


@pytest.fixture
def slow_comestri(emulator: Any, emulator_servers: Emulators) -> Iterator[RunningEmulator]:
    """Comestri (products) answers after 2 s; the other sources at once."""
    comestri = emulator("comestri")
    comestri.faults.set(latency_ms=SLOW_MS)
    yield comestri
    set_latency(emulator_servers, 0)


def url(gateway: RunningGateway) -> str:
    return f"{gateway.url}/graphql"


def whole(gateway: RunningGateway, query: str, variables: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    body: dict[str, Any] = post(gateway.url, query, variables).json()
    return body


@pytest.mark.parametrize("accept", FORMATS)
def test_the_slow_source_is_deferred_the_first_part_does_not_wait_for_it(
        gateway_server: RunningGateway, slow_comestri: RunningEmulator, accept: str) -> None:
    answer = fetch(url(gateway_server), DEFERRED, accept=accept)
    assert answer.content_type.startswith('multipart/mixed; boundary="graphql"; ')
    assert accept.split(";")[1] in answer.content_type
    first, *rest = answer.parts
    assert first["hasNext"] is True and rest and rest[-1]["hasNext"] is False
    assert set(first["data"]) == {"groups"}  # the fast sources' part, without the products
    assert len(first["data"]["groups"]["nodes"]) == 3
    # The first part came before the slow source answered; the deferred one after it.
    assert answer.arrived[-1] - answer.arrived[0] >= SLOW_MS / 1000 / 2
    if accept == INCREMENTAL_SPEC:
        assert first["pending"] == [{"id": "0", "path": [], "label": "slow"}]
        assert rest[-1]["completed"] == [{"id": "0"}]
    else:
        assert "pending" not in first
        assert rest[-1]["incremental"][0]["path"] == [] and \
            rest[-1]["incremental"][0]["label"] == "slow"
    assert merged(answer.parts) == whole(gateway_server, PLAIN)


def test_a_client_that_takes_no_parts_gets_the_whole_answer(
        gateway_server: RunningGateway) -> None:
    answer = fetch(url(gateway_server), DEFERRED, accept="application/json")
    assert answer.content_type.startswith("application/json")
    assert len(answer.parts) == 1 and "hasNext" not in answer.parts[0]
    assert answer.parts[0] == whole(gateway_server, PLAIN)


def test_an_event_stream_carries_the_parts_as_next_events(
        gateway_server: RunningGateway, slow_comestri: RunningEmulator) -> None:
    answer = fetch(url(gateway_server), DEFERRED, accept="text/event-stream")
    assert answer.content_type.startswith("text/event-stream")
    assert len(answer.parts) >= 2 and answer.parts[0]["pending"][0]["label"] == "slow"
    assert merged(answer.parts) == whole(gateway_server, PLAIN)


def node_ids(gateway: RunningGateway) -> tuple[list[str], list[str]]:
    """Ids on a fast source (Joptic's groups) and on the slow one (Comestri's products)."""
    data = whole(gateway, """{ productGroups(first: 4, filter: {sources: ["joptic"]}) {
        nodes { id } } products(first: 2) { nodes { id } } }""")["data"]
    return ([n["id"] for n in data["productGroups"]["nodes"]],
            [n["id"] for n in data["products"]["nodes"]])


STREAMED = """query Nodes($ids: [ID!]!) {
  nodes(ids: $ids) @stream(initialCount: 2, label: "nodes") {
    id ... on ProductGroup { name } ... on Product { name sku }
  }
}"""


@pytest.mark.parametrize("accept", FORMATS)
def test_streamed_nodes_come_as_their_sources_answer_in_list_order(
        gateway_server: RunningGateway, emulator_servers: Emulators, emulator: Any,
        accept: str) -> None:
    fast, slow = node_ids(gateway_server)
    ids = fast + slow
    emulator("comestri").faults.set(latency_ms=SLOW_MS)
    try:
        answer = fetch(url(gateway_server), STREAMED, {"ids": ids}, accept=accept)
    finally:
        set_latency(emulator_servers, 0)
    first, *rest = answer.parts
    assert [n["id"] for n in first["data"]["nodes"]] == fast[:2]
    # The other fast items came in a part before the slow source answered...
    items = [streamed_items(part, accept) for part in rest]
    before = [i for part, when in zip(items, answer.arrived[1:], strict=True)
              if when - answer.arrived[0] < SLOW_MS / 1000 / 2 for i in part]
    assert [n["id"] for n in before] == fast[2:]
    # ...the slow items after it, and all of them in list order.
    assert [n["id"] for part in items for n in part] == ids[2:]
    assert merged(answer.parts) == whole(gateway_server, STREAMED.replace(
        '@stream(initialCount: 2, label: "nodes")', ""), {"ids": ids})


def streamed_items(part: dict[str, Any], accept: str) -> list[Any]:
    return [item for entry in part.get("incremental", []) for item in entry.get("items") or ()]


FAILING = """query Failing {
  groups: productGroups(first: 2, filter: {sources: ["joptic"]}) { nodes { name } }
  ... @defer(label: "products") { products(first: 2) { nodes { name } } }
}"""


@pytest.mark.parametrize("accept", FORMATS)
def test_a_failing_deferred_source_sends_its_error_in_its_part(
        gateway_server: RunningGateway, emulator: Any, accept: str) -> None:
    emulator("comestri").faults.set(status=503)
    answer = fetch(url(gateway_server), FAILING, accept=accept)
    first, *rest = answer.parts
    assert "errors" not in first and first["data"]["groups"]["nodes"]
    errors = [e for part in rest for entry in part.get("incremental", []) + part.get(
        "completed", []) for e in entry.get("errors", [])]
    assert errors and all(e["extensions"]["source"] == "comestri" for e in errors)
    assert all(e["path"][0] == "products" for e in errors)
    expected = whole(gateway_server, FAILING.replace('... @defer(label: "products") {', "... {"))
    assert merged(answer.parts) == expected


@pytest.mark.parametrize("accept", [INCREMENTAL_SPEC, "application/json"])
def test_a_negative_initial_count_is_the_clients_error_before_any_call(
        gateway_server: RunningGateway, emulator_servers: Emulators, emulator: Any,
        accept: str) -> None:
    emulator("joptic")  # clean logs
    literal = "{ productGroups(first: 3) { nodes @stream(initialCount: -1) { name } } }"
    variable = """query Q($n: Int) {
      productGroups(first: 3) { nodes @stream(initialCount: $n) { name } } }"""
    for query, variables in ((literal, None), (variable, {"n": -3})):
        [answer] = fetch(url(gateway_server), query, variables, accept=accept).parts
        assert "data" not in answer
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"]
        assert "initialCount" in answer["errors"][0]["message"]
    assert not any(len(e.log) for e in emulator_servers.values())
