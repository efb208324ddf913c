"""``nodes(ids:)`` over every source: right objects, no repeated upstream call, concurrency."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.emulators.common import RecordedRequest
from tests.conftest import RunningGateway
from tests.graph_e2e.conftest import Emulators, clear_logs, requests_of, run, set_latency

NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
GROUP_IDS = """query($s: [ID!], $first: Int, $after: String) {
  productGroups(first: $first, after: $after, filter: {sources: $s}) {
    pageInfo { endCursor } nodes { id } } }"""
AXIM_PRODUCT_IDS = """query($first: Int, $after: String) {
  productGroups(first: $first, after: $after, filter: {sources: ["axim"]}) {
    pageInfo { endCursor } nodes { products(first: 2) { nodes { id } } } } }"""
PRODUCT_IDS = """query($first: Int, $after: String) {
  products(first: $first, after: $after) { pageInfo { endCursor } nodes { id } } }"""

Ids = list[tuple[str, str]]  # (global id, expected __typename)


def _ids(gateway: RunningGateway, skip: int) -> Ids:
    """30 real ids over the four sources; ``skip`` > 0 takes other ones (for the warm-up)."""
    ids: Ids = []
    for source, count in (("carecloud", 7), ("joptic", 7), ("axim", 6)):
        after = _cursor(gateway, GROUP_IDS, "productGroups", skip, {"s": [source]})
        page = run(gateway, GROUP_IDS, {"s": [source], "first": count, "after": after})
        ids += [(n["id"], "ProductGroup") for n in page["productGroups"]["nodes"]]
    after = _cursor(gateway, PRODUCT_IDS, "products", skip, {})
    page = run(gateway, PRODUCT_IDS, {"first": 5, "after": after})
    ids += [(n["id"], "Product") for n in page["products"]["nodes"]]
    after = _cursor(gateway, AXIM_PRODUCT_IDS, "productGroups", skip, {})
    page = run(gateway, AXIM_PRODUCT_IDS, {"first": 4, "after": after})
    products = [p["id"] for g in page["productGroups"]["nodes"] for p in g["products"]["nodes"]]
    ids += [(i, "Product") for i in products[:5]]
    assert len(ids) == 30 and len({i for i, _ in ids}) == 30
    return ids


def _cursor(gateway: RunningGateway, query: str, field: str, skip: int,
            variables: dict[str, Any]) -> str | None:
    if not skip:
        return None
    page = run(gateway, query, {**variables, "first": skip})
    cursor: str = page[field]["pageInfo"]["endCursor"]
    return cursor


@pytest.fixture(scope="module")
def node_ids(gateway_server: RunningGateway) -> Ids:
    return _ids(gateway_server, 0)


@pytest.fixture(scope="module")
def other_ids(gateway_server: RunningGateway) -> Ids:
    return _ids(gateway_server, 10)


def _all_in_flight_at_once(calls: dict[str, list[RecordedRequest]]) -> bool:
    """Whether at some instant every source had a request in flight, by the emulators' logs.

    Such an instant, if any, is the arrival of one of the requests: test each arrival.
    """
    arrivals = [r.started for records in calls.values() for r in records]
    return any(all(any(r.started <= t < r.finished for r in records)
                   for records in calls.values())
               for t in arrivals)


@pytest.mark.parametrize("latency", [pytest.param(0, id="no-latency"),
                                     pytest.param(250, id="latency-250ms")])
def test_nodes_over_every_source_are_fetched_once_and_concurrently(
        gateway_server: RunningGateway, emulators: Emulators, node_ids: Ids, other_ids: Ids,
        latency: int) -> None:
    assert not {i for i, _ in node_ids} & {i for i, _ in other_ids}
    set_latency(emulators, latency)
    run(gateway_server, NODES, {"ids": [i for i, _ in other_ids]})  # warm-up: connections
    clear_logs(emulators)
    nodes = run(gateway_server, NODES, {"ids": [i for i, _ in node_ids]})["nodes"]
    assert [(n["id"], n["__typename"]) for n in nodes] == node_ids

    calls = requests_of(emulators)
    assert all(calls[kind] for kind in calls), "every source was asked"
    for kind, records in calls.items():
        asked = [(r.path, r.query) for r in records]
        assert len(asked) == len(set(asked)), f"{kind} was asked the same twice: {asked}"
    # The emulators share one event loop and answer a request without yielding when no latency
    # is added, so only with latency can their logs show the gateway's concurrency. With 250 ms
    # per answer, the four sources' first requests (sent together) overlap unless the gateway
    # stalls for a quarter of a second between them; asked one after another, they never do.
    if latency:
        assert _all_in_flight_at_once(calls), (
            "the sources were not all asked at once: " + repr(
                {kind: [(r.started, r.finished) for r in records]
                 for kind, records in calls.items()}))
