"""AximAdapter over real HTTP against the Axim emulator.

Expected values come from the emulator's raw JSON (read with a plain httpx client) or from the
adapter's other, independent paths (``/all`` against ``/{id}``, one window against single pages),
and request counts and parameters from the emulator's request log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from gateway.config import SourceConfig
from gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from gateway.scope import RequestScope
from gateway.sources.axim import AximAdapter
from gateway.sources.query import GroupFilter
from gateway.sources.records import GroupStatus, Inventory, VariantOption
from gateway.upstream.client import UpstreamClient
from gateway.upstream.paging import plan_pages
from gateway.window import Window
from tests.conftest import RunningEmulator

EmulatorGetter = Callable[[str], RunningEmulator]
Factory = Callable[..., AximAdapter]
UNKNOWN_ID = "0123456789abcdef01234567"
PREFIX = "/open-api/api"


@pytest.fixture(scope="module")
def raw_groups(emulator_servers: dict[str, RunningEmulator]) -> list[dict[str, Any]]:
    """Every group straight from the emulator (three pages of 50, one product each)."""
    with emulator_servers["axim"].client() as client:
        return [group for page in (1, 2, 3)
                for group in client.get("/productGroup/all", params={
                    "page": page, "limit": 50, "productLimit": 1}).json()["data"]]


@pytest.fixture(scope="module")
def big(raw_groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups with more than 55 products (their product lists span two pages of 50)."""
    groups = [g for g in raw_groups if g["productCount"] > 55]
    assert len(groups) >= 2
    return groups


def raw_products(running: RunningEmulator, group_id: str) -> list[dict[str, Any]]:
    with running.client() as client:
        return [p for page in (1, 2)
                for p in client.get(f"/productGroup/{group_id}",
                                    params={"page": page, "limit": 50}).json()["data"]["products"]]


@pytest.fixture
def ax(emulator: EmulatorGetter) -> RunningEmulator:
    return emulator("axim")


@pytest.fixture
async def make(ax: RunningEmulator) -> AsyncIterator[Factory]:
    """``make(base_url=..., token=...)``: an adapter on the emulator; clients closed after."""
    clients: list[UpstreamClient] = []

    def factory(**overrides: Any) -> AximAdapter:
        settings: dict[str, Any] = {"name": "axim", "kind": "axim", "base_url": ax.url,
                                    "token": ax.token, **overrides}
        config = SourceConfig(**settings)
        client = UpstreamClient(config, auth_headers=AximAdapter.auth_headers(config.secret()))
        clients.append(client)
        return AximAdapter(config, client)

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
def adapter(make: Factory) -> AximAdapter:
    return make()


# -- protocol -----------------------------------------------------------------------------------

def test_auth_header_is_the_raw_token() -> None:
    assert AximAdapter.auth_headers("t0k") == {"accessToken": "t0k"}


def test_only_search_is_pushable(adapter: AximAdapter) -> None:
    assert adapter.unpushable(GroupFilter(search="x")) is None
    assert adapter.unpushable(GroupFilter(search="x", code="c", status=GroupStatus.ACTIVE)) == (
        "status")
    assert adapter.unpushable(GroupFilter(store_id="1", external_id="e")) == "storeId"
    assert adapter.unpushable(GroupFilter(code="c")) == "code"
    assert adapter.unpushable(GroupFilter(external_id="e")) == "externalId"


# -- groups -------------------------------------------------------------------------------------

async def test_list_groups_one_request_and_parse(adapter: AximAdapter, ax: RunningEmulator,
                                                 raw_groups: list[dict[str, Any]]) -> None:
    page = await adapter.list_groups(GroupFilter(), Window(0, 20), RequestScope())
    [request] = ax.log.records
    assert request.path == "/productGroup/all"
    assert request.params == {"page": ["1"], "limit": ["20"], "productPage": ["1"],
                              "productLimit": ["1"]}
    assert page.total == len(raw_groups)
    assert [g.upstream_id for g in page.items] == [g["id"] for g in raw_groups[:20]]
    group, raw = page.items[0], raw_groups[0]
    assert group.name == raw["name"]
    assert group.product_count == raw["productCount"]
    assert group.created_at is not None and group.created_at.utcoffset() is not None
    assert group.created_at.isoformat().startswith(raw["createdAt"][:19])
    assert group.updated_at is not None and group.updated_at.tzinfo is not None


async def test_whole_table_statuses_and_flags(adapter: AximAdapter, ax: RunningEmulator,
                                              raw_groups: list[dict[str, Any]]) -> None:
    page = await adapter.list_groups(GroupFilter(), Window(0, 200), RequestScope())
    assert all(int(r.param("limit") or 0) <= 50 for r in ax.log.records)
    assert [g.upstream_id for g in page.items] == [g["id"] for g in raw_groups]
    expected = {g["id"]: (GroupStatus.ACTIVE if g["status"] else GroupStatus.INACTIVE,
                          g["restrictAccess"]) for g in raw_groups}
    assert {g.upstream_id: (g.status, g.restrict_access) for g in page.items} == expected
    assert {g.status for g in page.items} == {GroupStatus.ACTIVE, GroupStatus.INACTIVE}
    assert {g.restrict_access for g in page.items} == {True, False}


async def test_window_across_the_page_boundary(adapter: AximAdapter,
                                               raw_groups: list[dict[str, Any]]) -> None:
    page = await adapter.list_groups(GroupFilter(), Window(45, 10), RequestScope())
    assert [g.upstream_id for g in page.items] == [g["id"] for g in raw_groups[45:55]]


async def test_search_is_pushed_down(adapter: AximAdapter, ax: RunningEmulator,
                                     raw_groups: list[dict[str, Any]]) -> None:
    page = await adapter.list_groups(GroupFilter(search="ELECTRONICS"), Window(0, 50),
                                     RequestScope())
    assert [r.param("search") for r in ax.log.records] == ["ELECTRONICS"]
    expected = [g["id"] for g in raw_groups if "electronics" in g["name"].casefold()]
    assert expected and [g.upstream_id for g in page.items] == expected
    assert page.total == len(expected)


# -- look-ahead ---------------------------------------------------------------------------------

async def test_look_ahead_is_one_request(adapter: AximAdapter, ax: RunningEmulator,
                                         raw_groups: list[dict[str, Any]]) -> None:
    scope = RequestScope()
    result = await adapter.list_groups_with_products(GroupFilter(), Window(0, 20), None,
                                                     Window(0, 5), scope)
    assert result is not None
    groups, products = result
    [request] = ax.log.records
    assert request.path == "/productGroup/all"
    assert request.params == {"page": ["1"], "limit": ["20"], "productPage": ["1"],
                              "productLimit": ["5"]}
    assert [g.upstream_id for g in groups.items] == [g["id"] for g in raw_groups[:20]]
    assert set(products) == {g.upstream_id for g in groups.items}
    for group in groups.items:
        page = products[group.upstream_id]
        assert page.total == group.product_count
        assert len(page.items) == min(5, group.product_count or 0)
        assert {p.group_id for p in page.items} <= {group.upstream_id}
    # The same products as the group's own endpoint answers.
    group = next(g for g in groups.items if (g.product_count or 0) > 5)
    own = await adapter.group_products(group.upstream_id, None, Window(0, 5), scope)
    assert [p.upstream_id for p in products[group.upstream_id].items] == [
        p.upstream_id for p in own.items]


async def test_look_ahead_trims_an_unaligned_product_window(
        adapter: AximAdapter, ax: RunningEmulator, big: list[dict[str, Any]]) -> None:
    scope = RequestScope()
    result = await adapter.list_groups_with_products(GroupFilter(), Window(0, 50), None,
                                                     Window(3, 5), scope)
    assert result is not None
    [request] = ax.log.records
    assert request.param("productPage") == "1" and request.param("productLimit") == "8"
    group_id = big[0]["id"]
    own = await adapter.group_products(group_id, None, Window(3, 5), scope)
    assert [p.upstream_id for p in result[1][group_id].items] == [p.upstream_id for p in own.items]


async def test_look_ahead_pushes_both_searches(adapter: AximAdapter, ax: RunningEmulator) -> None:
    result = await adapter.list_groups_with_products(GroupFilter(search="books"), Window(0, 10),
                                                     "cookbook", Window(0, 5), RequestScope())
    assert result is not None
    [request] = ax.log.records
    assert request.param("search") == "books" and request.param("productSearch") == "cookbook"
    groups, products = result
    assert groups.items and all("books" in (g.name or "").casefold() for g in groups.items)
    found = [p for page in products.values() for p in page.items]
    assert found and all("cookbook" in (p.name or "").casefold()
                         or "cookbook" in (p.sku or "").casefold() for p in found)


async def test_look_ahead_declines_a_window_of_two_product_pages(
        adapter: AximAdapter, ax: RunningEmulator) -> None:
    result = await adapter.list_groups_with_products(GroupFilter(), Window(0, 20), None,
                                                     Window(0, 60), RequestScope())
    assert result is None
    assert len(ax.log) == 0


# -- group products -----------------------------------------------------------------------------

async def test_group_products_params_and_parse(adapter: AximAdapter, ax: RunningEmulator,
                                               big: list[dict[str, Any]]) -> None:
    group_id = big[0]["id"]
    page = await adapter.group_products(group_id, None, Window(0, 10), RequestScope())
    [request] = ax.log.records
    assert request.path == f"/productGroup/{group_id}"
    assert request.params == {"page": ["1"], "limit": ["10"]}
    assert page.total == big[0]["productCount"]
    raws = raw_products(ax, group_id)[:10]
    for product, raw in zip(page.items, raws, strict=True):
        assert (product.upstream_id, product.group_id) == (raw["id"], group_id)
        assert (product.name, product.sku, product.status) == (raw["name"], raw["sku"],
                                                               raw["status"])
        assert product.price == float(raw["price"])
        assert product.description == raw.get("description")
        assert product.categories == raw["categories"]
        assert product.created_at is not None and product.created_at.tzinfo is not None
        assert product.updated_at is not None and product.updated_at.tzinfo is not None
        assert len(product.variants) == len(raw["variants"])
        for variant, raw_variant in zip(product.variants, raw["variants"], strict=True):
            assert (variant.upstream_id, variant.sku, variant.name) == (
                raw_variant["id"], raw_variant["sku"], raw_variant["name"])
            assert (variant.price, variant.cost, variant.sale_price, variant.is_active) == (
                raw_variant["price"], raw_variant["cost"], raw_variant.get("sale"),
                raw_variant["isActive"])
            assert isinstance(variant.inventory, Inventory)
            assert (variant.inventory.stock, variant.inventory.min_stock) == (
                raw_variant["inventory"]["stock"], raw_variant["inventory"]["minStock"])
            assert all(isinstance(o, VariantOption) for o in variant.options)
            assert [(o.name, o.label, o.value) for o in variant.options] == [
                (o["optionName"], o["optionValueLabel"], o["optionValue"])
                for o in raw_variant["options"]]
    variants = [v for p in page.items for v in p.variants]
    assert any(v.sale_price is not None for v in variants)
    assert any(v.sale_price is None for v in variants)


async def test_group_products_across_fifty_match_single_pages(
        adapter: AximAdapter, ax: RunningEmulator, big: list[dict[str, Any]]) -> None:
    group_id = big[0]["id"]
    # Items 5..54: no single page of at most 50 covers them, so two requests.
    page = await adapter.group_products(group_id, None, Window(5, 50), RequestScope())
    assert len(ax.log) == 2 and all(int(r.param("limit") or 0) <= 50 for r in ax.log.records)
    singles = await asyncio.gather(*(
        adapter.group_products(group_id, None, Window(i, 1), RequestScope())
        for i in range(5, 55)))
    assert [p.upstream_id for p in page.items] == [s.items[0].upstream_id for s in singles]
    assert len({p.upstream_id for p in page.items}) == 50


async def test_group_products_search(adapter: AximAdapter, ax: RunningEmulator,
                                     big: list[dict[str, Any]]) -> None:
    group_id = big[0]["id"]
    sku = raw_products(ax, group_id)[7]["sku"]
    ax.log.clear()
    page = await adapter.group_products(group_id, sku.lower(), Window(0, 20), RequestScope())
    assert [r.param("search") for r in ax.log.records] == [sku.lower()]
    assert [p.sku for p in page.items] == [sku] and page.total == 1


async def test_group_products_unknown_and_malformed_ids(adapter: AximAdapter,
                                                        ax: RunningEmulator) -> None:
    page = await adapter.group_products(UNKNOWN_ID, None, Window(0, 5), RequestScope())
    assert (page.items, page.total) == ([], 0)
    assert [r.status for r in ax.log.records] == [404]
    for bad in ("nope", UNKNOWN_ID.upper(), UNKNOWN_ID + "0", "../all"):
        page = await adapter.group_products(bad, None, Window(0, 5), RequestScope())
        assert (page.items, page.total) == ([], 0)
    assert len(ax.log) == 1


# -- by id --------------------------------------------------------------------------------------

async def test_groups_by_ids(adapter: AximAdapter, ax: RunningEmulator,
                             raw_groups: list[dict[str, Any]]) -> None:
    wanted = [raw_groups[3], raw_groups[77]]
    ids = [g["id"] for g in wanted]
    found = await adapter.groups_by_ids([*ids, UNKNOWN_ID, "malformed", ids[0]], RequestScope())
    assert set(found) == set(ids)
    for raw in wanted:
        group = found[raw["id"]]
        assert (group.name, group.product_count, group.restrict_access) == (
            raw["name"], raw["productCount"], raw["restrictAccess"])
        assert group.status is (GroupStatus.ACTIVE if raw["status"] else GroupStatus.INACTIVE)
        assert group.created_at is not None and group.created_at.tzinfo is not None
    records = ax.log.records
    assert sorted(r.path for r in records) == sorted(
        f"/productGroup/{i}" for i in [*ids, UNKNOWN_ID])
    assert all(r.params == {"page": ["1"], "limit": ["1"]} for r in records)


async def test_products_by_keys_across_two_groups(adapter: AximAdapter, ax: RunningEmulator,
                                                  big: list[dict[str, Any]],
                                                  raw_groups: list[dict[str, Any]]) -> None:
    first = big[0]["id"]
    second = next(g for g in raw_groups if 0 < g["productCount"] <= 50)["id"]
    a, b = raw_products(ax, first), raw_products(ax, second)
    ax.log.clear()
    keys = [(a[0]["id"], first), (a[-1]["id"], first), (b[0]["id"], second),
            (UNKNOWN_ID, first), (a[1]["id"], second), (a[2]["id"], None), (a[3]["id"], "bad")]
    scope = RequestScope()
    found = await adapter.products_by_keys(keys, frozenset({"name"}), scope)
    assert set(found) == set(keys[:3])
    assert found[keys[1]].name == a[-1]["name"] and found[keys[1]].group_id == first
    assert found[keys[2]].sku == b[0]["sku"] and found[keys[2]].group_id == second
    calls = sorted((r.path, r.param("page"), r.param("limit")) for r in ax.log.records)
    [rest] = plan_pages(Window(50, len(a) - 50), 50)  # the remainder as fetch_window asks it
    assert calls == sorted([
        (f"/productGroup/{first}", "1", "50"),
        (f"/productGroup/{first}", str(rest.page), str(rest.size)),
        (f"/productGroup/{second}", "1", "50")])
    # Memoized for the request: another lookup in the same scope makes no call.
    again = await asyncio.gather(adapter.products_by_keys([keys[0]], frozenset(), scope),
                                 adapter.products_by_keys([(a[5]["id"], first)], frozenset(),
                                                          scope))
    assert again[0][keys[0]].upstream_id == a[0]["id"] and len(again[1]) == 1
    assert len(ax.log) == 3


async def test_a_lookup_of_groups_and_their_products_shares_the_calls(
        adapter: AximAdapter, ax: RunningEmulator, raw_groups: list[dict[str, Any]]) -> None:
    # Five groups (more than the three fetched one by one), three of them with a product
    # looked up too: their calls are the products' first pages, so the other two go by id.
    small = [g for g in raw_groups if 0 < g["productCount"] <= 50][:5]
    ids = [g["id"] for g in small]
    products = {g: raw_products(ax, g)[0]["id"] for g in ids[:3]}
    ax.log.clear()
    keys = [(product, group) for group, product in products.items()]
    lookup = await adapter.lookup(ids, keys, frozenset({"name"}), RequestScope())
    assert not isinstance(lookup.groups, BaseException)
    assert not isinstance(lookup.products, BaseException)
    assert set(lookup.groups) == set(ids) and set(lookup.products) == set(keys)
    assert [lookup.groups[g["id"]].product_count for g in small] == [
        g["productCount"] for g in small]
    calls = sorted((r.path, r.param("limit")) for r in ax.log.records)
    assert calls == sorted([(f"/productGroup/{g}", "50") for g in ids[:3]]
                           + [(f"/productGroup/{g}", "1") for g in ids[3:]])
    # The same groups alone: more than three by id read the table instead.
    ax.log.clear()
    alone = await adapter.lookup(ids, [], frozenset(), RequestScope())
    assert not isinstance(alone.groups, BaseException) and set(alone.groups) == set(ids)
    assert {r.path for r in ax.log.records} == {"/productGroup/all"}


# -- base URL, errors ---------------------------------------------------------------------------

async def test_base_url_with_open_api_prefix(make: Factory, ax: RunningEmulator,
                                             raw_groups: list[dict[str, Any]]) -> None:
    adapter = make(base_url=ax.url + PREFIX)
    scope = RequestScope()
    groups = await adapter.list_groups(GroupFilter(), Window(0, 3), scope)
    assert [g.upstream_id for g in groups.items] == [g["id"] for g in raw_groups[:3]]
    found = await adapter.groups_by_ids([raw_groups[0]["id"]], scope)
    assert set(found) == {raw_groups[0]["id"]}
    assert [r.path for r in ax.log.records] == [
        f"{PREFIX}/productGroup/all", f"{PREFIX}/productGroup/{raw_groups[0]['id']}"]


def assert_clean(error: UpstreamError, ax: RunningEmulator) -> None:
    assert error.source == "axim" and "axim" in error.message
    for leak in (ax.url, "127.0.0.1", "productGroup", ax.token, "wrong-token", "{"):
        assert leak not in error.message


async def test_wrong_token_is_unauthorized(make: Factory, ax: RunningEmulator) -> None:
    adapter = make(token="wrong-token")
    with pytest.raises(UpstreamUnauthorized) as caught:
        await adapter.list_groups(GroupFilter(), Window(0, 5), RequestScope())
    assert_clean(caught.value, ax)


async def test_server_error_is_unavailable(adapter: AximAdapter, ax: RunningEmulator) -> None:
    ax.faults.set(status=500)
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.group_products(UNKNOWN_ID, None, Window(0, 5), RequestScope())
    assert_clean(caught.value, ax)


async def test_malformed_json_is_a_bad_response(adapter: AximAdapter,
                                                ax: RunningEmulator) -> None:
    ax.faults.set(malformed=True)
    with pytest.raises(UpstreamBadResponse) as caught:
        await adapter.list_groups(GroupFilter(), Window(0, 5), RequestScope())
    assert_clean(caught.value, ax)


@pytest.mark.parametrize("body", [
    {"success": True, "data": "groups"},
    {"success": True, "data": [{"id": 5}], "pagination": {"total": 1}},
    {"success": True, "data": [{"id": "a", "status": "yes"}], "pagination": {"total": 1}},
    {"success": True, "data": [{"id": "a", "createdAt": "soon"}], "pagination": {"total": 1}},
    {"success": True, "data": [], "pagination": {}},
])
async def test_unexpected_shape_is_a_bad_response(body: dict[str, Any]) -> None:
    # The emulator always answers the documented shape: a stub transport answers others.
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    config = SourceConfig(name="axim", kind="axim", base_url="http://axim.invalid",
                          token="secret-token")
    client = UpstreamClient(config, auth_headers=AximAdapter.auth_headers("secret-token"),
                            transport=transport)
    try:
        with pytest.raises(UpstreamBadResponse) as caught:
            await AximAdapter(config, client).list_groups(GroupFilter(), Window(0, 5),
                                                          RequestScope())
    finally:
        await client.aclose()
    assert caught.value.source == "axim"
    assert "invalid" not in caught.value.message and "secret" not in caught.value.message
    assert "groups" not in caught.value.message and "soon" not in caught.value.message
