"""What an answer in parts costs and keeps at the edge: the access log and metrics give the
time to the first part, a client that leaves cancels what is pending, the response cache keeps
only whole answers and sends a hit to such a client as one part, and the request's deadline
covers every part."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import UNCACHED, RunningEmulator
from tests.edge.test_observe import Lines
from tests.graph_e2e.incremental_client import INCREMENTAL_SPEC, fetch, merged
from tests.helpers import post
from tests.observed import config_for, scrape, serving

Emulators = dict[str, RunningEmulator]
CACHED = {"cache_ttl_seconds": 30, "group_cache_ttl_seconds": 30}

DEFERRED = """query Catalogue {
  groups: productGroups(first: 2) { nodes { name } }
  ... @defer(label: "slow") { products(first: 2) { nodes { name } } }
}"""
PLAIN = DEFERRED.replace('... @defer(label: "slow") {', "... {")


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    yield handler
    handler.detach()


def slowed(emulator: Callable[[str], RunningEmulator], ms: int) -> None:
    emulator("comestri").faults.set(latency_ms=ms)


def test_the_log_and_metrics_give_the_time_to_the_first_and_to_the_last_part(
        emulator_servers: Emulators, emulator: Callable[[str], RunningEmulator],
        lines: Lines) -> None:
    with serving(config_for(emulator_servers, defaults=UNCACHED)) as (_, url):
        lines.attach()
        slowed(emulator, 1500)
        answer = fetch(f"{url}/graphql", DEFERRED)
        metrics = scrape(url)
    assert len(answer.parts) == 2
    [line] = lines.objects("gateway.access")
    assert line["operation"] == "Catalogue" and line["outcome"] == "ok"
    assert line["duration_ms"] - line["first_part_ms"] >= 750  # the slow part came later
    assert line["upstream_requests"] == len(emulator("comestri").log) + sum(
        len(emulator(k).log) for k in ("carecloud", "joptic", "axim"))
    assert metrics.total("gateway_graphql_first_part_seconds_count",
                         operation="Catalogue") == 1
    assert metrics.total("gateway_graphql_request_duration_seconds_count",
                         operation="Catalogue") == 1


def test_a_client_that_leaves_cancels_the_parts_still_to_come(
        emulator_servers: Emulators, emulator: Callable[[str], RunningEmulator],
        lines: Lines) -> None:
    with serving(config_for(emulator_servers, defaults=UNCACHED)) as (_, url):
        lines.attach()
        slowed(emulator, 6000)
        started = time.monotonic()
        with httpx.stream("POST", f"{url}/graphql", json={"query": DEFERRED},
                          headers={"accept": INCREMENTAL_SPEC}, timeout=30) as response:
            first = next(response.iter_raw())
            assert b'"hasNext":true' in first
        # The request ends when the client leaves, not when the slow source would answer.
        deadline = started + 5
        while not lines.objects("gateway.access") and time.monotonic() < deadline:
            time.sleep(0.05)
        ended = time.monotonic() - started
    [line] = lines.objects("gateway.access")
    assert line["outcome"] == "cancelled"
    assert ended < 5 and line["duration_ms"] < 5000


def test_only_whole_answers_are_kept_and_a_hit_is_sent_as_one_part(
        emulator_servers: Emulators, emulator: Callable[[str], RunningEmulator]) -> None:
    config = config_for(emulator_servers, defaults=CACHED, response_cache=True)
    with serving(config) as (_, url):
        endpoint = f"{url}/graphql"
        in_parts = fetch(endpoint, DEFERRED)
        assert len(in_parts.parts) == 2
        again = fetch(endpoint, DEFERRED)  # the answer in parts was not kept
        assert len(again.parts) == 2
        whole = post(url, DEFERRED)  # a whole answer is kept...
        assert whole.headers["x-response-cache"] == "miss"
        calls = sum(len(e.log) for e in emulator_servers.values())
        hit = fetch(endpoint, DEFERRED)  # ...and sent to a client taking parts as one part
        assert sum(len(e.log) for e in emulator_servers.values()) == calls
    assert hit.content_type.startswith("multipart/mixed")
    assert hit.parts == [{**whole.json(), "hasNext": False}]
    assert merged(in_parts.parts) == merged(hit.parts)


def test_the_request_deadline_covers_the_later_parts(
        emulator_servers: Emulators, emulator: Callable[[str], RunningEmulator]) -> None:
    config = config_for(emulator_servers, defaults=UNCACHED,
                        server={"request_timeout_seconds": 1.0})
    with serving(config) as (_, url):
        slowed(emulator, 3000)
        started = time.monotonic()
        answer = fetch(f"{url}/graphql", DEFERRED)
        took = time.monotonic() - started
    first, *rest = answer.parts
    assert first["data"]["groups"]["nodes"] and "errors" not in first
    errors: list[dict[str, Any]] = [e for part in rest for entry in (
        part.get("incremental", []) + part.get("completed", [])) for e in entry.get("errors", [])]
    # The slow source's products are missing, its failure named beside them.
    assert errors and {e["extensions"]["code"] for e in errors} <= {
        "UPSTREAM_TIMEOUT", "GATEWAY_TIMEOUT"}, errors
    assert all(e["extensions"].get("source") == "comestri" for e in errors), errors
    assert merged(answer.parts)["data"]["products"] == {"nodes": []}
    assert took < 3  # the deadline, not the source, ended the last part


def test_the_answer_size_limit_counts_every_part(emulator_servers: Emulators) -> None:
    big = """query Big { groups: productGroups(first: 1) { nodes { name } }
      ... @defer { products(first: 100) { nodes { name description categories
        variants { sku } attributes { code value } } } } }"""
    config = config_for(emulator_servers, defaults=UNCACHED,
                        limits={"max_response_bytes": 4096})
    with serving(config) as (_, url):
        answer = fetch(f"{url}/graphql", big)
    first, *rest = answer.parts
    assert first["data"]["groups"]["nodes"], first  # the first part fits
    [done] = [entry for part in rest for entry in part.get("completed", [])]
    assert [e["extensions"]["code"] for e in done["errors"]] == ["RESPONSE_TOO_LARGE"]
    assert "products" not in merged(answer.parts)["data"]
