"""GraphiQL's default query shows the product: a list across sources and a nested connection."""

from __future__ import annotations

from typing import Any

from gateway.edge.playground import DEFAULT_QUERY
from tests.conftest import RunningGateway


def test_the_default_query_answers_a_cross_source_list_with_nested_products(
    gateway_server: RunningGateway,
) -> None:
    body: dict[str, Any] = gateway_server.query(DEFAULT_QUERY)
    assert "errors" not in body, body["errors"]
    groups = body["data"]["productGroups"]
    nodes = groups["nodes"]
    sources = [node["source"]["id"] for node in nodes]
    assert len(set(sources)) >= 2, sources
    names = [node["name"].casefold() for node in nodes]
    assert names == sorted(names)
    with_products = [node for node in nodes if node["products"]["nodes"]]
    assert with_products, "no group shows its products"
    assert all(len(node["products"]["nodes"]) <= 2 for node in nodes)
    assert len(body["data"]["sources"]) == 4
