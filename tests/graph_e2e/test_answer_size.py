"""The answer's size is part of its price, over real sockets: a query whose answer may hold more
values than ``[limits] max_response_values`` is refused before any upstream request, whatever
multiplies it (aliases, fragments, nested lists, bigger pages, page sizes sent as variables),
and the error names the part that is too large; a query within the limit is answered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.config import LimitSettings
from gateway.edge.app import GatewayApp, create_app
from gateway.edge.serving import ServerThread
from tests.graph_e2e.conftest import Emulators, clear_logs, limits_config, upstream_requests
from tests.helpers import codes, post

# Every field of a product and of its variants, through one fragment.
PRODUCT = """fragment P on Product {
  id upstreamId name sku price status description categories createdAt updatedAt
  source { id kind } productClass { upstreamId name } attributes { code value }
  variants { upstreamId sku name price cost salePrice isActive
             options { name label value } inventory { stock minStock } } }"""


def groups_with_products(aliases: int, groups: int = 100, products: int = 50,
                         items: str = "nodes") -> str:
    lists = " ".join(
        f'a{i}: productGroups(first: {groups}, filter: {{sources: ["axim"]}}) {{ {items} '
        f"{{ {'node { ' if items == 'edges' else ''}id name products(first: {products}) "
        f"{{ nodes {{ ...P }} }} {'}' if items == 'edges' else ''} }} }}"
        for i in range(aliases))
    return f"{{ {lists} }} {PRODUCT}"


# The attack of the issue: 30 aliases of every Axim group with its first 50 products, every
# field (about 70 MB of JSON); its upstream answers were cached, so it cost no upstream call.
ATTACK = groups_with_products(30)
# Each variant, and where its error says most of the answer would be.
VARIANTS = {
    "the attack": (ATTACK, "a0.nodes.products.nodes.variants"),
    "one alias of it": (groups_with_products(1), "a0.nodes.products.nodes.variants"),
    "bigger product pages": (groups_with_products(1, groups=20, products=100),
                             "a0.nodes.products.nodes.variants"),
    "through edges": (groups_with_products(3, groups=20, items="edges"),
                      "a0.edges.node.products.nodes.variants"),
    "deeper lists": ("""{ productGroups(first: 100) { nodes { id name
        parent { name products(first: 50) { nodes { ...P } } }
        products(first: 50) { nodes { ...P } } } } }""" + PRODUCT, "productGroups.nodes"),
    "many products": ("{ " + " ".join(f"p{i}: products(first: 100) {{ nodes {{ ...P }} }}"
                                      for i in range(10)) + " } " + PRODUCT,
                      "p0.nodes.variants"),
}
VARIABLE = ("query Shelf($groups: Int, $products: Int = 5) { productGroups(first: $groups, "
            'filter: {sources: ["axim"]}) { nodes { name products(first: $products) { '
            "nodes { ...P } } } } } " + PRODUCT)


class Gateway:
    def __init__(self, app: GatewayApp, url: str) -> None:
        self.app = app
        self.url = url

    def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return post(self.url, query, variables,
                    {"accept": "application/graphql-response+json"}, timeout=60)

    def runs(self) -> int:
        return sum(self.app.state.plans.runs.values())


@pytest.fixture(scope="module")
def gateway(emulator_servers: Emulators) -> Iterator[Gateway]:
    app = create_app(limits_config(emulator_servers))
    with ServerThread({"gateway": app}) as servers:
        yield Gateway(app, servers.urls["gateway"])


def refused(gateway: Gateway, emulators: Emulators, query: str,
            variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The refusal of ``query``: a request error, no upstream request, nothing executed."""
    clear_logs(emulators)
    runs = gateway.runs()
    started = time.perf_counter()
    response = gateway.post(query, variables)
    elapsed = time.perf_counter() - started
    body: dict[str, Any] = response.json()
    assert response.status_code == 400 and "data" not in body, body
    assert codes(body) == ["QUERY_TOO_COMPLEX"], body
    assert upstream_requests(emulators) == 0 and gateway.runs() == runs
    assert elapsed < 1.0, elapsed  # priced, not built: the attack took 3-12 s of CPU before
    return body


@pytest.mark.parametrize("name", list(VARIANTS))
def test_answers_too_large_are_refused_before_any_request(
        gateway: Gateway, emulator_servers: Emulators, name: str) -> None:
    query, largest = VARIANTS[name]
    body = refused(gateway, emulator_servers, query)
    extensions = body["errors"][0]["extensions"]
    limit = LimitSettings().max_response_values
    assert extensions["maxResponseValues"] == limit < extensions["responseValues"]
    assert "[limits] max_response_values" in body["errors"][0]["message"]
    assert extensions["largest"].startswith(largest)  # down to the list that multiplies
    assert f"`{extensions['largest']}`" in body["errors"][0]["message"]


def test_the_attack_names_its_largest_part(gateway: Gateway,
                                           emulator_servers: Emulators) -> None:
    extensions = refused(gateway, emulator_servers, ATTACK)["errors"][0]["extensions"]
    # 30 aliases x 100 groups x 50 products x every field: tens of millions of values.
    assert extensions["responseValues"] > 30 * 100 * 50 * 40


def test_a_shelf_within_the_limit_is_answered(gateway: Gateway) -> None:
    body = gateway.post(groups_with_products(1, groups=10, products=5)).json()
    assert "errors" not in body and len(body["data"]["a0"]["nodes"]) == 10


def test_page_sizes_sent_as_variables_are_priced_with_each_requests_values(
        gateway: Gateway, emulator_servers: Emulators) -> None:
    small = gateway.post(VARIABLE, {"groups": 3, "products": 2}).json()
    assert "errors" not in small and len(small["data"]["productGroups"]["nodes"]) == 3
    # The same document with the largest pages: refused before any request.
    body = refused(gateway, emulator_servers, VARIABLE, {"groups": 100, "products": 100})
    assert body["errors"][0]["extensions"]["responseValues"] > 100 * 100 * 40
    # A variable not sent takes its default (5); one sent as null means no argument (20).
    assert "errors" not in gateway.post(VARIABLE, {"groups": 4}).json()
    assert "errors" not in gateway.post(VARIABLE, {"groups": 20, "products": None}).json()
    again = gateway.post(VARIABLE, {"groups": 3, "products": 2}).json()
    assert again == small
