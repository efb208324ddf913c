"""Client mistakes, unknown ids, languages and upstream failures, as a client sees them."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gateway.ids import NodeKey, NodeType, encode_id
from tests.conftest import RunningGateway
from tests.graph_e2e.conftest import (
    TOKENS,
    Emulators,
    ask,
    carecloud_groups,
    clear_logs,
    run,
)
from tests.helpers import codes

# -- 8: languages -------------------------------------------------------------------------------

NAMES = """{ productGroups(first: 30, filter: {sources: ["carecloud"]}) {
  nodes { upstreamId name } } }"""


def test_accept_language_chooses_carecloud_names(
        gateway_server: RunningGateway, emulators: Emulators) -> None:
    answers: dict[str, list[dict[str, Any]]] = {}
    for language in ("cs", "en"):
        clear_logs(emulators)
        answers[language] = run(gateway_server, NAMES, headers={"Accept-Language": language}
                                )["productGroups"]["nodes"]
        records = emulators["carecloud"].log.records
        assert records and all(r.headers.get("accept-language") == language for r in records)
    cs, en = answers["cs"], answers["en"]
    assert [g["upstreamId"] for g in cs] == [g["upstreamId"] for g in en]
    assert sum(a["name"] != b["name"] for a, b in zip(cs, en, strict=True)) > 20
    expected = carecloud_groups(emulators["carecloud"], "en")[:30]
    assert [g["name"] for g in en] == [r["name"] for r in expected]


# -- 9: client mistakes -------------------------------------------------------------------------


def _bad_input(body: dict[str, Any]) -> None:
    assert body.get("data") is None, body
    assert codes(body) == ["BAD_USER_INPUT"], body


def test_first_above_the_maximum_is_bad_user_input(gateway_server: RunningGateway) -> None:
    _bad_input(ask(gateway_server, "{ productGroups(first: 101) { totalCount } }"))


def test_garbage_cursor_is_bad_user_input(gateway_server: RunningGateway) -> None:
    _bad_input(ask(gateway_server,
        '{ productGroups(first: 5, after: "garbage") { nodes { id } } }'))
    _bad_input(ask(gateway_server,
        '{ products(first: 5, after: "bm90IGEgY3Vyc29y") { nodes { id } } }'))


def test_cursor_of_another_filter_is_bad_user_input(gateway_server: RunningGateway) -> None:
    query = """query($s: [ID!], $after: String) {
      productGroups(first: 2, after: $after, filter: {sources: $s}) {
        pageInfo { endCursor } } }"""
    cursor = run(gateway_server, query, {"s": ["axim"]})["productGroups"]["pageInfo"]["endCursor"]
    assert run(gateway_server, query, {"s": ["axim"], "after": cursor})  # valid where it belongs
    _bad_input(ask(gateway_server, query, {"s": ["joptic"], "after": cursor}))
    _bad_input(ask(gateway_server, query, {"s": None, "after": cursor}))


NODE = "query($id: ID!) { node(id: $id) { id __typename } }"


@pytest.mark.parametrize("node_id", [
    "garbage",
    encode_id(NodeKey(NodeType.PRODUCT_GROUP, "axim", "0123456789abcdef01234567")),
    encode_id(NodeKey(NodeType.PRODUCT_GROUP, "axim", "not-an-object-id")),
    encode_id(NodeKey(NodeType.PRODUCT_GROUP, "carecloud", "1")),
    encode_id(NodeKey(NodeType.PRODUCT_GROUP, "joptic", "clxunknown")),
    encode_id(NodeKey(NodeType.PRODUCT, "comestri", "999999")),
    encode_id(NodeKey(NodeType.PRODUCT_GROUP, "no-such-source", "1")),
], ids=["garbage", "axim", "axim-malformed", "carecloud", "joptic", "comestri", "no-source"])
def test_unknown_ids_answer_null_without_error(gateway_server: RunningGateway,
                                               node_id: str) -> None:
    body = ask(gateway_server, NODE, {"id": node_id})
    assert body == {"data": {"node": None}}


# -- 9: upstream failures -----------------------------------------------------------------------


def _assert_no_leak(body: dict[str, Any], emulators: Emulators) -> None:
    for error in body.get("errors") or []:
        message = error["message"]
        assert "http" not in message and "://" not in message, message
        assert not any(token in message for token in TOKENS), message
        assert not any(e.url.split("//")[1] in message for e in emulators.values()), message


def test_a_failing_source_costs_its_groups_and_the_total_only(
        gateway_server: RunningGateway, emulators: Emulators) -> None:
    emulators["joptic"].faults.set(status=503)
    body = ask(gateway_server, """{ productGroups(first: 100) { totalCount
        nodes { source { id } } } }""")
    page = body["data"]["productGroups"]
    assert len(page["nodes"]) == 100
    assert page["totalCount"] is None
    errors = body["errors"]
    assert len(errors) == 1
    assert errors[0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert errors[0]["extensions"]["source"] == "joptic"
    _assert_no_leak(body, emulators)

    # The other sources behind it still answer.
    body = ask(gateway_server, """{ productGroups(first: 100,
        filter: {sources: ["joptic", "axim"]}) { totalCount nodes { source { id } } } }""")
    page = body["data"]["productGroups"]
    assert {n["source"]["id"] for n in page["nodes"]} == {"axim"}
    assert len(page["nodes"]) == 100 and page["totalCount"] is None
    assert [(e["extensions"]["code"], e["extensions"]["source"]) for e in body["errors"]] == [
        ("UPSTREAM_UNAVAILABLE", "joptic")]
    _assert_no_leak(body, emulators)


def test_a_failing_axim_group_lookup_is_null_with_an_error(
        gateway_server: RunningGateway, emulators: Emulators) -> None:
    node_id = run(gateway_server, '{ productGroups(first: 1, filter: {sources: ["axim"]}) '
                                  '{ nodes { id } } }')["productGroups"]["nodes"][0]["id"]
    emulators["axim"].faults.set(status=500)
    body = ask(gateway_server, """query($id: ID!) { node(id: $id) { id
        ... on ProductGroup { name products(first: 5) { totalCount } } } }""", {"id": node_id})
    assert body["data"] == {"node": None}
    assert [(e["extensions"]["code"], e["extensions"]["source"]) for e in body["errors"]] == [
        ("UPSTREAM_UNAVAILABLE", "axim")]
    _assert_no_leak(body, emulators)


def _seed_passing_first_then_failing(rate: float, failing: int) -> int:
    """A fault seed whose first request passes and the next ``failing`` fail (emulator draws)."""
    for seed in range(10_000):
        rng = random.Random(seed)
        draws = [rng.random() < rate for _ in range(1 + failing)]
        if not draws[0] and all(draws[1:]):
            return seed
    raise AssertionError("no such seed")


def test_failing_group_products_null_only_that_field(
        gateway_server: RunningGateway, emulators: Emulators) -> None:
    """The group list answers; the products (read per group after it) fail with an error."""
    seed = _seed_passing_first_then_failing(0.5, 4)
    emulators["axim"].faults.set(status=500, rate=0.5, seed=seed)
    # 60 products are two upstream pages: no look-ahead, the products come after the list.
    body = ask(gateway_server, """{ productGroups(first: 1, filter: {sources: ["axim"]}) {
        nodes { name products(first: 60) { totalCount nodes { id } } } } }""")
    nodes = body["data"]["productGroups"]["nodes"]
    assert len(nodes) == 1 and nodes[0]["name"] and nodes[0]["products"] is None
    assert [(e["extensions"]["code"], e["extensions"]["source"], e["path"])
            for e in body["errors"]] == [
        ("UPSTREAM_UNAVAILABLE", "axim", ["productGroups", "nodes", 0, "products"])]
    _assert_no_leak(body, emulators)
