"""ComestriAdapter over real HTTP against the Comestri emulator.

Expected values come from the emulator's raw JSON (read with a plain httpx client), and request
counts and parameters from the emulator's request log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from gateway.config import SourceConfig
from gateway.errors import (
    Unsupported,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from gateway.scope import RequestScope
from gateway.sources.comestri import ComestriAdapter, filter_params
from gateway.sources.query import ALL_PRODUCT_FIELDS, GroupFilter, ProductFilter
from gateway.sources.records import Attribute, ProductClass
from gateway.upstream.client import UpstreamClient
from gateway.window import Window
from tests.conftest import RunningEmulator

EmulatorGetter = Callable[[str], RunningEmulator]
Factory = Callable[..., ComestriAdapter]
EVERYTHING = {"response_product_fields": "name,status",
              "response_associated_fields": "product_class,attribute_values,product_categories"}


@pytest.fixture(scope="module")
def raw(emulator_servers: dict[str, RunningEmulator]) -> list[dict[str, Any]]:
    """Every root product with every field this adapter reads, in the upstream's order."""
    with emulator_servers["comestri"].client() as client:
        return [entry for page in (1, 2, 3)
                for entry in client.get("/products", params={
                    "page": page, "per_page": 250, **EVERYTHING}).json()["entries"]]


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture
def cm(emulator: EmulatorGetter) -> RunningEmulator:
    return emulator("comestri")


@pytest.fixture
async def make(cm: RunningEmulator) -> AsyncIterator[Factory]:
    """``make(token=...)``: an adapter on the emulator; clients closed after."""
    clients: list[UpstreamClient] = []

    def factory(**overrides: Any) -> ComestriAdapter:
        settings: dict[str, Any] = {"name": "comestri", "kind": "comestri", "base_url": cm.url,
                                    "token": cm.token, **overrides}
        config = SourceConfig(**settings)
        client = UpstreamClient(config, auth_headers=ComestriAdapter.auth_headers(config.secret()))
        clients.append(client)
        return ComestriAdapter(config, client)

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
def adapter(make: Factory) -> ComestriAdapter:
    return make()


FIRST_TWENTY = Window(0, 20)


async def products(adapter: ComestriAdapter, window: Window = FIRST_TWENTY,
                   fields: frozenset[str] = ALL_PRODUCT_FIELDS, **filters: Any) -> list[Any]:
    page = await adapter.list_products(ProductFilter(**filters), window, fields, RequestScope())
    return page.items


# -- protocol -----------------------------------------------------------------------------------

async def test_bearer_auth_and_no_groups(adapter: ComestriAdapter) -> None:
    assert ComestriAdapter.auth_headers("t") == {"Authorization": "Bearer t"}
    with pytest.raises(Unsupported):
        await adapter.list_groups(GroupFilter(), Window(0, 5), RequestScope())


# -- listing ------------------------------------------------------------------------------------

async def test_list_one_request_and_parse(adapter: ComestriAdapter, cm: RunningEmulator,
                                          raw: list[dict[str, Any]]) -> None:
    page = await adapter.list_products(ProductFilter(), Window(0, 20), ALL_PRODUCT_FIELDS,
                                       RequestScope())
    [request] = cm.log.records
    assert request.path == "/products"
    assert request.params == {"page": ["1"], "per_page": ["20"], "root_products_only": ["true"],
                              **{k: [v] for k, v in EVERYTHING.items()}}
    assert page.total == len(raw) == 530
    for product, entry in zip(page.items, raw[:20], strict=True):
        assert (product.upstream_id, product.sku, product.name, product.status) == (
            str(entry["id"]), entry["code"], entry["name"], entry["status"])
        assert product.product_class == ProductClass(str(entry["product_class"]["id"]),
                                                     entry["product_class"]["name"])
        assert product.attributes == [
            Attribute(a["attribute_definition_code"], a["data"]) for a in entry["attribute_values"]]
        assert product.categories == [c["name"] for c in entry["product_categories"]]
        assert product.created_at == stamp(entry["created_at"])
        assert product.created_at is not None and product.created_at.tzinfo is not None
        assert product.updated_at == stamp(entry["updated_at"])
        assert (product.price, product.variants, product.group_id) == (None, [], None)
        descriptions = [a["data"] for a in entry["attribute_values"]
                        if a["attribute_definition_code"] == "description"]
        assert product.description == (descriptions[0] if descriptions else None)
    assert any(p.description is not None for p in page.items)
    assert any(p.description is None for p in page.items)
    assert any(p.categories for p in page.items)


async def test_paging_over_the_whole_list(adapter: ComestriAdapter, cm: RunningEmulator,
                                          raw: list[dict[str, Any]]) -> None:
    everything = await products(adapter, Window(0, 530), frozenset({"name"}))
    assert [p.upstream_id for p in everything] == [str(e["id"]) for e in raw]
    sizes = [int(r.param("per_page") or 0) for r in cm.log.records]
    assert len(sizes) == 3 and max(sizes) <= 250  # the fewest pages of at most 250
    beyond = await products(adapter, Window(500, 100), frozenset({"name"}))
    assert [p.upstream_id for p in beyond] == [str(e["id"]) for e in raw[500:]]
    middle = await products(adapter, Window(240, 20), frozenset({"name"}))
    assert [p.upstream_id for p in middle] == [str(e["id"]) for e in raw[240:260]]


# -- field selection ----------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "product_fields", "associated"), [
    ({"name", "status"}, "name,status", ""),
    ({"id", "status", "sku"}, "status", ""),
    ({"id"}, "name", ""),
    ({"attributes"}, "name", "attribute_values"),
    ({"description", "name"}, "name", "attribute_values"),
    ({"productClass"}, "name", "product_class"),
    ({"categories", "createdAt"}, "name", "product_categories"),
])
async def test_field_selection_params(adapter: ComestriAdapter, cm: RunningEmulator,
                                      fields: set[str], product_fields: str,
                                      associated: str) -> None:
    items = await products(adapter, Window(0, 5), frozenset(fields))
    [request] = cm.log.records
    assert request.params["response_product_fields"] == [product_fields]
    # Always present: absent, Comestri would add product_class and attribute_values.
    assert request.params["response_associated_fields"] == [associated]
    assert len(items) == 5
    first = items[0]
    assert (first.product_class is not None) == ("productClass" in fields)
    assert bool(first.attributes) == (associated == "attribute_values")
    assert (first.status is not None) == ("status" in fields)


# -- filters ------------------------------------------------------------------------------------

async def test_search_status_and_code_are_pushed_down(adapter: ComestriAdapter,
                                                      cm: RunningEmulator,
                                                      raw: list[dict[str, Any]]) -> None:
    found = await products(adapter, Window(0, 100), search="POLO")
    assert cm.log.records[-1].param("name") == "POLO"
    assert [p.upstream_id for p in found] == [
        str(e["id"]) for e in raw if "polo" in e["name"].casefold()][:100]
    assert found

    found = await products(adapter, Window(0, 100), status="inactive")
    assert cm.log.records[-1].param("status") == "inactive"
    inactive = [str(e["id"]) for e in raw if e["status"] == "inactive"]
    assert inactive and [p.upstream_id for p in found] == inactive[:100]

    code = raw[123]["code"]
    found = await products(adapter, Window(0, 10), code=code)
    assert cm.log.records[-1].param("code") == code
    assert [p.sku for p in found] == [code]


async def test_time_windows_are_pushed_down_in_utc(adapter: ComestriAdapter, cm: RunningEmulator,
                                                   raw: list[dict[str, Any]]) -> None:
    plus_two = timezone(timedelta(hours=2))
    after = datetime(2024, 3, 1, 12, 0, 0, 500_000, tzinfo=plus_two)  # 10:00:00.5 UTC
    before = datetime(2024, 9, 1, 2, 0, 0, 900_000, tzinfo=plus_two)  # 00:00:00.9 UTC
    for key, attribute, param in (("created", "created_at", "created_time"),
                                  ("updated", "updated_at", "updated_time")):
        cm.log.clear()
        found = await products(adapter, Window(0, 100), frozenset({"name"}),
                               **{f"{key}_after": after, f"{key}_before": before})
        [request] = cm.log.records
        assert request.param(f"{param}_from") == "2024-03-01T10:00:01Z"
        assert request.param(f"{param}_to") == "2024-09-01T00:00:00Z"
        expected = [str(e["id"]) for e in raw if after <= stamp(e[attribute]) <= before]
        assert expected and [p.upstream_id for p in found] == expected[:100]


def test_filter_params_naive_times_are_utc() -> None:
    params = filter_params(ProductFilter(created_before=datetime(2024, 1, 2, 3, 4, 5),
                                         updated_after=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)))
    assert params == {"created_time_to": "2024-01-02T03:04:05Z",
                      "updated_time_from": "2024-01-02T03:04:05Z"}


# -- by id --------------------------------------------------------------------------------------

async def test_products_by_keys(adapter: ComestriAdapter, cm: RunningEmulator,
                                raw: list[dict[str, Any]]) -> None:
    ids = [str(raw[0]["id"]), str(raw[400]["id"])]
    keys = [(ids[0], None), (ids[1], None), ("999999", None), ("abc", None), ("1e3", None)]
    found = await adapter.products_by_keys(keys, frozenset({"name", "productClass"}),
                                           RequestScope())
    assert set(found) == set(keys[:2])
    assert found[keys[1]].name == raw[400]["name"]
    assert found[keys[1]].product_class == ProductClass(str(raw[400]["product_class"]["id"]),
                                                        raw[400]["product_class"]["name"])
    records = cm.log.records
    assert sorted(r.param("id") or "" for r in records) == sorted([*ids, "999999"])
    for request in records:
        assert request.path == "/products"
        assert request.param("per_page") == "1"
        assert request.param("response_product_fields") == "name"
        assert request.param("response_associated_fields") == "product_class"


# -- errors -------------------------------------------------------------------------------------

def assert_clean(error: UpstreamError, cm: RunningEmulator) -> None:
    assert error.source == "comestri" and "comestri" in error.message
    for leak in (cm.url, "127.0.0.1", "/products", cm.token, "wrong-token", "forbidden", "{"):
        assert leak not in error.message


@pytest.mark.parametrize("token", ["wrong-token", "demo-comestri-forbidden"])
async def test_refused_token_is_unauthorized(make: Factory, cm: RunningEmulator,
                                             token: str) -> None:
    with pytest.raises(UpstreamUnauthorized) as caught:
        await products(make(token=token))
    assert_clean(caught.value, cm)
    assert [r.status for r in cm.log.records] == [401 if token == "wrong-token" else 403]


async def test_server_error_is_unavailable(adapter: ComestriAdapter, cm: RunningEmulator) -> None:
    cm.faults.set(status=500)
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.products_by_keys([("1006", None)], frozenset({"name"}), RequestScope())
    assert_clean(caught.value, cm)


async def test_malformed_json_is_a_bad_response(adapter: ComestriAdapter,
                                                cm: RunningEmulator) -> None:
    cm.faults.set(malformed=True)
    with pytest.raises(UpstreamBadResponse) as caught:
        await products(adapter)
    assert_clean(caught.value, cm)


@pytest.mark.parametrize("body", [
    {"entries": {}, "total_entries": 1},
    {"entries": [{"id": "1006"}], "total_entries": 1},
    {"entries": [{"id": 1, "attribute_values": [{"data": "x"}]}], "total_entries": 1},
    {"entries": [{"id": 1, "product_class": {"name": "Style"}}], "total_entries": 1},
    {"entries": [{"id": 1, "created_at": "yesterday"}], "total_entries": 1},
    {"entries": []},
])
async def test_unexpected_shape_is_a_bad_response(body: dict[str, Any]) -> None:
    # The emulator always answers the documented shape: a stub transport answers others.
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    config = SourceConfig(name="comestri", kind="comestri", base_url="http://comestri.invalid",
                          token="secret-token")
    client = UpstreamClient(config, auth_headers=ComestriAdapter.auth_headers("secret-token"),
                            transport=transport)
    try:
        with pytest.raises(UpstreamBadResponse) as caught:
            await products(ComestriAdapter(config, client))
    finally:
        await client.aclose()
    assert caught.value.source == "comestri"
    for leak in ("invalid", "secret", "yesterday", "Style", "1006"):
        assert leak not in caught.value.message
