"""The benchmark's scenarios, the request each sends, and the data the references serve.

Shared by ``bench/run.py`` (the benchmark) and ``tests/bench`` (which runs every scenario once, so
the benchmark cannot rot). Everything here talks to a gateway over HTTP only.

Scenarios:

* ``main``: 20 Axim groups x ``products(first: 5) { name sku variants { sku } }`` (one upstream call
  when nothing is cached);
* ``merged``: the first 20 groups of every source merged by name (reads each source's group table);
* ``nodes``: ``nodes(ids:)`` with 30 ids across the sources (groups and products).

Honest uncached requests: each carries its own ``Accept-Language`` (:func:`tagged_language`), a
private-use tag no upstream knows, so every answer is unchanged (checked byte for byte) while no
two requests share an upstream call: the language is part of every upstream call's identity in
the gateway (in-request memo, in-flight de-duplication, cache key, kept group tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

__all__ = [
    "SCENARIOS",
    "SOURCES",
    "Scenario",
    "body_bytes",
    "gateway_config",
    "load_dataset",
    "nodes_ids",
    "prepare",
    "tagged_language",
]

# Configured source order (the gateway's and the stock reference's tie-break of the name merge).
SOURCES = ("carecloud", "joptic", "axim", "comestri")

MAIN_QUERY = (
    '{ productGroups(first: 20, filter: {sources: ["axim"]}) { nodes { name '
    "products(first: 5) { totalCount nodes { name sku variants { sku } } } } } }"
)
MERGED_QUERY = (
    "{ productGroups(first: 20, orderBy: {field: NAME}) "
    "{ totalCount nodes { id name source { id } } } }"
)
NODES_QUERY = (
    "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { __typename id "
    "... on ProductGroup { name } ... on Product { name sku } } }"
)


@dataclass(frozen=True)
class Scenario:
    """One GraphQL request the benchmark repeats (``variables`` filled in by :func:`prepare`)."""

    name: str
    title: str
    query: str
    variables: dict[str, Any] | None = field(default=None)


SCENARIOS = (
    Scenario("main", "20 Axim groups x products(first: 5) with variant SKUs", MAIN_QUERY),
    Scenario("merged", "first 20 groups of all sources merged by name", MERGED_QUERY),
    Scenario("nodes", "nodes(ids:) with 30 ids across the sources", NODES_QUERY),
)


def tagged_language(tag: str) -> str:
    """An Accept-Language that answers like none at all but is distinct per ``tag``.

    ``bench/wrk.lua`` builds the same string per request; keep the two in step. Subtags are
    at most 8 letters or digits (RFC 5646), or the gateway refuses the header.
    """
    letters = "".join(c for c in tag if c.isalnum()).lower() or "0"
    return "x-bench-" + "-".join(letters[i:i + 8] for i in range(0, len(letters), 8))


def body_bytes(scenario: Scenario) -> bytes:
    """The POST body of one request of the scenario."""
    return orjson.dumps({"query": scenario.query, "variables": scenario.variables})


def post(url: str, scenario: Scenario, headers: dict[str, str] | None = None) -> bytes:
    """One request of the scenario; the raw answer (HTTP 200 and no GraphQL errors checked)."""
    response = httpx.post(url, content=body_bytes(scenario), timeout=60,
                          headers={"Content-Type": "application/json", **(headers or {})})
    if response.status_code != 200 or b'"errors"' in response.content:
        raise RuntimeError(f"{scenario.name} at {url}: {response.status_code} "
                           f"{response.text[:400]}")
    return response.content


def _query(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(url, json={"query": query, "variables": variables}, timeout=120)
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"{url}: {response.status_code} {str(body)[:400]}")
    data: dict[str, Any] = body["data"]
    return data


def _walk(url: str, query: str, field_name: str) -> list[dict[str, Any]]:
    """Every node of a connection, page after page (``$after`` is the query's cursor)."""
    nodes: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        connection = _query(url, query, {"after": after})[field_name]
        nodes += connection["nodes"]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]


def nodes_ids(url: str) -> list[str]:
    """30 ids across the sources: 5 groups each of CareCloud, Joptic and Axim, 9 Axim products
    (3 of each of the first 3 groups with 3 or more: one product list read per group) and 6
    Comestri products."""
    ids: list[str] = []
    for source in ("carecloud", "joptic", "axim"):
        data = _query(url, "query($s: [ID!]) { productGroups(first: 5, filter: {sources: $s}) "
                           "{ nodes { id } } }", {"s": [source]})
        ids += [n["id"] for n in data["productGroups"]["nodes"]]
    data = _query(url, '{ productGroups(first: 10, filter: {sources: ["axim"]}) '
                       "{ nodes { products(first: 3) { nodes { id } } } } }")
    full = [g["products"]["nodes"] for g in data["productGroups"]["nodes"]
            if len(g["products"]["nodes"]) == 3]
    ids += [p["id"] for products in full[:3] for p in products]
    data = _query(url, '{ products(first: 6, filter: {sources: ["comestri"]}) { nodes { id } } }')
    ids += [n["id"] for n in data["products"]["nodes"]]
    if len(ids) != 30:
        raise RuntimeError(f"expected 30 ids for the nodes scenario, found {len(ids)}")
    return ids


def prepare(url: str) -> list[Scenario]:
    """The scenarios with their variables, read from the gateway at ``url``."""
    ids = nodes_ids(url)
    return [Scenario(s.name, s.title, s.query, {"ids": ids}) if s.name == "nodes" else s
            for s in SCENARIOS]


GROUPS_PAGE = ("query($after: String) { productGroups(first: 100, after: $after) { "
               "pageInfo { hasNextPage endCursor } nodes { id upstreamId name source { id } } } }")
AXIM_PAGE = ('query($after: String) { productGroups(first: 25, after: $after, '
             'filter: {sources: ["axim"]}) { pageInfo { hasNextPage endCursor } nodes { id '
             "products(first: 100) { totalCount nodes { id name sku variants { sku } } } } } }")
COMESTRI_PAGE = ('query($after: String) { products(first: 100, after: $after, '
                 'filter: {sources: ["comestri"]}) { pageInfo { hasNextPage endCursor } '
                 "nodes { id name sku variants { sku } } } }")


def load_dataset(url: str) -> dict[str, Any]:
    """Every record the scenarios touch, as plain JSON, read once from the gateway at ``url``.

    ``groups``: every group of every source in the gateway's unordered list order (configured
    source order, then each upstream's order), with its upstream id; ``products``: each Axim
    group's whole product list by group id; ``loose_products``: Comestri's products.
    """
    groups = _walk(url, GROUPS_PAGE, "productGroups")
    products: dict[str, list[dict[str, Any]]] = {}
    for group in _walk(url, AXIM_PAGE, "productGroups"):
        page = group["products"]
        if page["totalCount"] != len(page["nodes"]):
            raise RuntimeError("an Axim group has more products than one page of 100")
        products[group["id"]] = page["nodes"]
    return {"groups": groups, "products": products,
            "loose_products": _walk(url, COMESTRI_PAGE, "products")}


def gateway_config(emulator_urls: dict[str, str], tokens: dict[str, str], *, cached: bool,
                   compiled: bool = True, response_cache: bool = False,
                   cache_url: str | None = None, observed: bool = False) -> str:
    """A ``gateway serve`` TOML config over the emulators: upstream caches warm-able or off
    (off: no de-duplication either, so every query makes its own upstream calls), compiled
    execution on or off, the whole-response cache on or off (in memory, or ``cache_url``),
    and ``observed``: Prometheus metrics and a JSON log line per request on (else both off)."""
    ttl = 3600 if cached else 0
    on = str(observed).lower()
    lines = ["[server]", "graphiql = false", 'cursor_secret = "bench-cursor-secret"',
             f"compiled_execution = {str(compiled).lower()}", f"access_log = {on}", "",
             "[metrics]", f"enabled = {on}", "",
             "[logging]", 'level = "info"', 'format = "json"', "",
             "[response_cache]", f"enabled = {str(response_cache).lower()}", "",
             "[defaults]", f"cache_ttl_seconds = {ttl}", f"group_cache_ttl_seconds = {ttl}",
             f"stale_grace_seconds = {ttl}", f"dedup = {str(cached).lower()}",
             # 32 clients at once, 15 calls each uncached (nodes): queue them all, measure CPU.
             "max_queue = 10000"]
    if cache_url is not None:
        lines = ["[cache]", f'url = "{cache_url}"', "", *lines]
    for kind in SOURCES:
        lines += ["", "[[sources]]", f'name = "{kind}"', f'kind = "{kind}"',
                  f'base_url = "{emulator_urls[kind]}"', f'token = "{tokens[kind]}"']
    return "\n".join(lines) + "\n"
