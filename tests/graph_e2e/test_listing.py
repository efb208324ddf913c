"""Lists through the gateway against the emulators: request counts, data, order and paging."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from tests.conftest import RunningGateway
from tests.graph_e2e.conftest import (
    SOURCES,
    Emulators,
    carecloud_groups,
    clear_logs,
    joptic_pages,
    requests_of,
    run,
    set_latency,
)

LATENCIES = [pytest.param(0, id="no-latency"), pytest.param(100, id="latency-100ms")]


# -- 1: Axim groups with their first products: one request ------------------------------------

AXIM_NESTED = """{ productGroups(first: 20, filter: {sources: ["axim"]}) { nodes { name
  products(first: 5) { totalCount nodes { name sku variants { sku } } } } } }"""


@pytest.mark.parametrize("latency", LATENCIES)
def test_axim_groups_with_products_are_one_request_and_match_upstream(
        gateway_server: RunningGateway, emulators: Emulators, latency: int) -> None:
    set_latency(emulators, latency)
    clear_logs(emulators)
    groups = run(gateway_server, AXIM_NESTED)["productGroups"]["nodes"]
    calls = requests_of(emulators)
    assert {kind: len(records) for kind, records in calls.items()} == {
        "carecloud": 0, "joptic": 0, "axim": 1, "comestri": 0}

    axim = emulators["axim"]
    response = httpx.get(f"{axim.url}/productGroup/all",
                         params={"page": 1, "limit": 20, "productLimit": 5},
                         headers={"accessToken": "demo-axim-token"}, timeout=10)
    expected = response.json()["data"]
    assert len(groups) == len(expected) == 20
    for got, want in zip(groups, expected, strict=True):
        assert got["name"] == want["name"]
        assert got["products"]["totalCount"] == want["productPagination"]["total"]
        assert [(p["name"], p["sku"], [v["sku"] for v in p["variants"]])
                for p in got["products"]["nodes"]] == [
            (p["name"], p["sku"], [v["sku"] for v in p["variants"]]) for p in want["products"]]
    assert any(g["products"]["totalCount"] == 0 for g in groups)  # a group without products
    assert any(g["products"]["totalCount"] > 5 for g in groups)  # and one cut to five


AXIM_NESTED_VARIABLES = """query ($n: Int, $s: String) {
  productGroups(first: 20, filter: {sources: ["axim"]}) { nodes { name
    products(first: $n, search: $s) { nodes { sku } } } } }"""


@pytest.mark.parametrize("variables", [{"n": 5}, {"n": 5, "s": None}, {"n": 5, "s": "a"}],
                         ids=["unsent", "null", "given"])
def test_the_look_ahead_reads_variables_sent_or_not(
        gateway_server: RunningGateway, emulators: Emulators, variables: dict[str, Any]) -> None:
    clear_logs(emulators)
    run(gateway_server, AXIM_NESTED_VARIABLES, variables)
    [call] = requests_of(emulators)["axim"]
    search = variables.get("s")
    assert call.params.get("productSearch") == (None if search is None else [search])
    assert call.params["productLimit"] == ["5"]


# -- 2: parents resolve with few requests ------------------------------------------------------

PARENTS = """query($s: [ID!]) { productGroups(first: 50, filter: {sources: $s}) {
  nodes { upstreamId name parent { upstreamId name } } } }"""


def _carecloud_parent(group: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if group["parent_product_group_id"] is not None:
        return next(r for r in rows if r["product_group_id"] == group["parent_product_group_id"])
    if group["parent_external_id"] is not None:
        return next(r for r in rows if r["external_id"] == group["parent_external_id"])
    return None


@pytest.mark.parametrize("latency", LATENCIES)
def test_carecloud_parents_take_at_most_two_requests(
        gateway_server: RunningGateway, emulators: Emulators,
        upstream: dict[str, list[dict[str, Any]]], latency: int) -> None:
    set_latency(emulators, latency)
    clear_logs(emulators)
    nodes = run(gateway_server, PARENTS, {"s": ["carecloud"]})["productGroups"]["nodes"]
    calls = requests_of(emulators)
    assert len(calls["carecloud"]) <= 2
    assert sum(len(records) for records in calls.values()) <= 2

    rows = upstream["carecloud"]
    assert [n["upstreamId"] for n in nodes] == [r["product_group_id"] for r in rows[:50]]
    with_parent = 0
    for node, row in zip(nodes, rows, strict=False):
        assert node["name"] == row["name"]
        parent = _carecloud_parent(row, rows)
        if parent is None:
            assert node["parent"] is None
        else:
            with_parent += 1
            assert node["parent"] == {"upstreamId": parent["product_group_id"],
                                      "name": parent["name"]}
    assert with_parent > 10
    # Some children on this page name their parent only by external id.
    assert any(r["parent_product_group_id"] is None and r["parent_external_id"] is not None
               for r in rows[:50])


@pytest.mark.parametrize("latency", LATENCIES)
def test_joptic_parents_take_one_request_plus_the_table(
        gateway_server: RunningGateway, emulators: Emulators, latency: int) -> None:
    rows, total = joptic_pages(emulators["joptic"])
    set_latency(emulators, latency)
    clear_logs(emulators)
    nodes = run(gateway_server, PARENTS, {"s": ["joptic"]})["productGroups"]["nodes"]
    calls = requests_of(emulators)
    assert sum(len(records) for records in calls.values()) == len(calls["joptic"])
    assert len(calls["joptic"]) <= 1 + math.ceil(total / 100)

    by_id = {r["id"]: r for r in rows}
    assert [n["upstreamId"] for n in nodes] == [r["id"] for r in rows[:50]]
    for node, row in zip(nodes, rows, strict=False):
        assert node["name"] == row["name"]
        expected = None if row["parent"] is None else {
            "upstreamId": row["parent"], "name": by_id[row["parent"]]["name"]}
        assert node["parent"] == expected
    assert sum(n["parent"] is not None for n in nodes) > 5


# -- 5: paging through every group --------------------------------------------------------------

PAGE = """query($first: Int, $after: String, $last: Int, $before: String,
               $order: ProductGroupOrder) {
  productGroups(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { upstreamId name source { id } } } } }"""

Key = tuple[str, str]


def _key(edge: dict[str, Any]) -> Key:
    return edge["node"]["source"]["id"], edge["node"]["upstreamId"]


def _upstream_sequence(upstream: dict[str, list[dict[str, Any]]]) -> list[tuple[Key, str | None]]:
    ids = {"carecloud": "product_group_id", "joptic": "id", "axim": "id"}
    return [((source, row[ids[source]]), row["name"])
            for source in ("carecloud", "joptic", "axim") for row in upstream[source]]


def _by_name(items: list[tuple[Key, str | None]]) -> list[tuple[Key, str | None]]:
    rank = {name: i for i, name in enumerate(SOURCES)}
    return sorted(items, key=lambda item: (item[1] is None, (item[1] or "").casefold(),
                                           rank[item[0][0]], item[0][1]))


def _walk_forward(gateway: RunningGateway, order: dict[str, str] | None,
                  headers: dict[str, str] | None = None
                  ) -> tuple[list[dict[str, Any]], list[int]]:
    edges: list[dict[str, Any]] = []
    totals: list[int] = []
    after: str | None = None
    for number in range(50):
        page = run(gateway, PAGE, {"first": 100, "after": after, "order": order},
                   headers)["productGroups"]
        totals.append(page["totalCount"])
        assert page["pageInfo"]["hasPreviousPage"] is (number > 0)
        edges += page["edges"]
        if not page["pageInfo"]["hasNextPage"]:
            return edges, totals
        assert len(page["edges"]) == 100
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    raise AssertionError("paging did not end")


def _walk_backward(gateway: RunningGateway, order: dict[str, str] | None
                   ) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    before: str | None = None
    for _ in range(50):
        page = run(gateway, PAGE, {"last": 100, "before": before, "order": order})["productGroups"]
        pages.append(page["edges"])
        if not page["pageInfo"]["hasPreviousPage"]:
            return pages
        assert len(page["edges"]) == 100
        before = page["pageInfo"]["startCursor"]
        assert before == page["edges"][0]["cursor"]
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("order", [None, {"field": "NAME"}], ids=["unordered", "by-name"])
def test_paging_visits_every_group_once_in_order(
        gateway_server: RunningGateway, upstream: dict[str, list[dict[str, Any]]],
        order: dict[str, str] | None) -> None:
    expected = _upstream_sequence(upstream)
    if order is not None:
        expected = _by_name(expected)
    edges, totals = _walk_forward(gateway_server, order)
    keys = [_key(e) for e in edges]
    assert len(set(keys)) == len(keys), "a group came twice"
    assert keys == [key for key, _ in expected]
    assert [e["node"]["name"] for e in edges] == [name for _, name in expected]
    assert totals == [len(expected)] * len(totals)

    backward = _walk_backward(gateway_server, order)
    assert [len(p) for p in backward][:-1] == [100] * (len(backward) - 1)
    assert [_key(e) for page in reversed(backward) for e in page] == keys


def test_name_order_breaks_ties_between_sources_by_source_order(
        gateway_server: RunningGateway, emulator_servers: Emulators,
        upstream: dict[str, list[dict[str, Any]]]) -> None:
    """In English, CareCloud and Joptic share names ("Sunglasses"...): CareCloud comes first."""
    english = {**upstream, "carecloud": carecloud_groups(emulator_servers["carecloud"], "en")}
    expected = _by_name(_upstream_sequence(english))
    folded: dict[str, set[str]] = {}
    for (source, _), name in expected:
        if name is not None:
            folded.setdefault(name.casefold(), set()).add(source)
    assert sum(len(sources) > 1 for sources in folded.values()) >= 3, "no ties across sources"
    edges, _ = _walk_forward(gateway_server, {"field": "NAME"}, {"Accept-Language": "en"})
    assert [(_key(e), e["node"]["name"]) for e in edges] == expected


def test_name_order_puts_nameless_groups_last_and_breaks_ties_by_source(
        gateway_server: RunningGateway, upstream: dict[str, list[dict[str, Any]]]) -> None:
    """The last page by name holds the nameless Joptic groups; duplicate names keep id order."""
    page = run(gateway_server, PAGE, {"last": 100, "order": {"field": "NAME"}})["productGroups"]
    nameless = [r["id"] for r in upstream["joptic"] if r["name"] is None]
    assert nameless
    tail = page["edges"][-len(nameless):]
    assert [_key(e) for e in tail] == [("joptic", i) for i in sorted(nameless)]
    assert all(e["node"]["name"] is None for e in tail)


# -- 6: nested products of one Axim group -------------------------------------------------------

GROUP_PRODUCTS = """query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  node(id: $id) { ... on ProductGroup {
    products(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { upstreamId } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } } } }"""


def _group_id(gateway: RunningGateway, upstream_id: str) -> str:
    """The global id the gateway lists for an Axim group among the first hundred."""
    query = '{ productGroups(first: 100, filter: {sources: ["axim"]}) { nodes { id upstreamId } } }'
    nodes = run(gateway, query)["productGroups"]["nodes"]
    return str(next(n["id"] for n in nodes if n["upstreamId"] == upstream_id))


def test_nested_products_page_like_the_upstream(
        gateway_server: RunningGateway, emulators: Emulators,
        upstream: dict[str, list[dict[str, Any]]]) -> None:
    group = max(upstream["axim"][:100], key=lambda g: g["productCount"])
    total = group["productCount"]
    assert total > 50
    with emulators["axim"].client() as client:
        pages = [[p["id"] for p in client.get(f"/productGroup/{group['id']}", params={
            "page": n, "limit": 7}).json()["data"]["products"]]
            for n in range(1, math.ceil(total / 7) + 1)]
    everything = [p for page in pages for p in page]
    assert len(everything) == total
    node_id = _group_id(gateway_server, group["id"])

    after: str | None = None
    for number, expected in enumerate(pages):
        got = run(gateway_server, GROUP_PRODUCTS, {"id": node_id, "first": 7, "after": after}
                  )["node"]["products"]
        assert [e["node"]["upstreamId"] for e in got["edges"]] == expected
        assert got["totalCount"] == total
        assert got["pageInfo"]["hasNextPage"] is (number < len(pages) - 1)
        assert got["pageInfo"]["hasPreviousPage"] is (number > 0)
        after = got["pageInfo"]["endCursor"]

    backward: list[list[str]] = []
    before: str | None = None
    while True:
        got = run(gateway_server, GROUP_PRODUCTS, {"id": node_id, "last": 7, "before": before}
                  )["node"]["products"]
        backward.insert(0, [e["node"]["upstreamId"] for e in got["edges"]])
        assert got["totalCount"] == total
        if not got["pageInfo"]["hasPreviousPage"]:
            break
        assert len(backward) <= len(pages)
        before = got["pageInfo"]["startCursor"]
    assert [len(p) for p in backward][1:] == [7] * (len(backward) - 1)
    assert [p for page in backward for p in page] == everything


# -- 7: Comestri asks only for the fields selected ----------------------------------------------


def test_comestri_asks_for_no_associated_fields_unless_selected(
        gateway_server: RunningGateway, emulators: Emulators) -> None:
    clear_logs(emulators)
    nodes = run(gateway_server, "{ products(first: 5) { nodes { name status } } }"
                )["products"]["nodes"]
    assert len(nodes) == 5 and all(n["name"] and n["status"] for n in nodes)
    records = emulators["comestri"].log.records
    assert len(records) == 1
    assert records[0].params.get("response_associated_fields") == [""]

    clear_logs(emulators)
    query = "{ products(first: 5) { nodes { name attributes { code value } } } }"
    nodes = run(gateway_server, query)["products"]["nodes"]
    assert any(n["attributes"] for n in nodes)
    records = emulators["comestri"].log.records
    assert len(records) == 1
    assert records[0].param("response_associated_fields") == "attribute_values"


# -- 10: capabilities, and groups without products ----------------------------------------------


def test_sources_list_their_capabilities(gateway_server: RunningGateway) -> None:
    sources = run(gateway_server, "{ sources { id kind capabilities } }")["sources"]
    assert sources == [
        {"id": "carecloud", "kind": "CARECLOUD", "capabilities": ["PRODUCT_GROUPS"]},
        {"id": "joptic", "kind": "JOPTIC", "capabilities": ["PRODUCT_GROUPS"]},
        {"id": "axim", "kind": "AXIM",
         "capabilities": ["PRODUCT_GROUPS", "GROUP_PRODUCTS", "GROUP_BY_ID"]},
        {"id": "comestri", "kind": "COMESTRI", "capabilities": ["PRODUCTS", "PRODUCT_BY_ID"]},
    ]


def test_groups_of_a_source_without_products_have_an_empty_connection(
        gateway_server: RunningGateway, emulators: Emulators) -> None:
    clear_logs(emulators)
    nodes = run(gateway_server, """{ productGroups(first: 3, filter: {sources: ["carecloud"]}) {
        nodes { products(first: 5) { totalCount nodes { id }
                                     pageInfo { hasNextPage hasPreviousPage } } } } }"""
                )["productGroups"]["nodes"]
    assert len(nodes) == 3
    for node in nodes:
        assert node["products"] == {"totalCount": 0, "nodes": [], "pageInfo": {
            "hasNextPage": False, "hasPreviousPage": False}}
    assert len(emulators["carecloud"].log) == 1
