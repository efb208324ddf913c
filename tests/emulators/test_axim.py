"""The Axim Commerce emulator over real HTTP: envelopes, paging, search, auth and errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import gateway.emulators.axim as axim
from tests.conftest import RunningEmulator

Emulator = Callable[[str], RunningEmulator]
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
HEX24 = re.compile(r"[0-9a-f]{24}")
GROUP_KEYS = {"id", "name", "status", "restrictAccess", "createdAt", "updatedAt"}
PRODUCT_KEYS = {"id", "name", "sku", "price", "status", "description", "variants", "categories",
                "mediaGallery", "seo", "createdAt", "updatedAt"}


@pytest.fixture
def api(emulator: Emulator) -> Iterator[httpx.Client]:
    with emulator("axim").client() as client:
        yield client


def get_all(api: httpx.Client, **params: Any) -> dict[str, Any]:
    response = api.get("/productGroup/all", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get_one(api: httpx.Client, group_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/productGroup/{group_id}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["data"]
    return body


def big_group() -> Any:
    return next(g for g in axim.groups() if len(g.products) > 50)


def test_all_defaults_and_envelope(api: httpx.Client) -> None:
    body = get_all(api)
    assert set(body) == {"success", "data", "pagination"}
    assert body["success"] is True
    assert body["pagination"] == {"page": 1, "total": len(axim.groups()), "count": 10, "limit": 10}
    assert body["pagination"]["total"] >= 110
    for group in body["data"]:
        assert set(group) == GROUP_KEYS | {"productCount", "products", "productPagination"}
        assert HEX24.fullmatch(group["id"])
        assert isinstance(group["status"], bool) and isinstance(group["restrictAccess"], bool)
        assert ISO_MS.fullmatch(group["createdAt"]) and ISO_MS.fullmatch(group["updatedAt"])
        pagination = group["productPagination"]
        assert pagination["page"] == 1 and pagination["limit"] == 5
        assert pagination["total"] == group["productCount"]
        assert pagination["count"] == len(group["products"]) == min(5, group["productCount"])


def test_groups_ordered_by_created_then_id(api: httpx.Client) -> None:
    data = get_all(api, limit=50)["data"] + get_all(api, limit=50, page=2)["data"]
    keys = [(g["createdAt"], g["id"]) for g in data]
    assert keys == sorted(keys) and len(set(keys)) == 100


def test_product_shape(api: httpx.Client) -> None:
    group = big_group()
    product = get_one(api, group.info["id"], limit=1)["products"][0]
    assert set(product) == PRODUCT_KEYS
    assert HEX24.fullmatch(product["id"])
    assert isinstance(product["price"], int | float)
    assert product["status"] in {"active", "inactive", "draft"}
    assert all(isinstance(c, str) for c in product["categories"])
    assert all(set(m) == {"url", "alt"} for m in product["mediaGallery"])
    assert set(product["seo"]) == {"title", "description"}
    assert 1 <= len(product["variants"]) <= 4
    for variant in product["variants"]:
        assert {"id", "sku", "name", "price", "cost", "options", "inventory", "isActive"} <= set(
            variant)
        assert set(variant) <= {"id", "sku", "name", "price", "cost", "sale", "options",
                                "inventory", "isActive"}
        assert set(variant["inventory"]) == {"stock", "minStock"}
        assert all(set(o) == {"optionName", "optionValueLabel", "optionValue"}
                   for o in variant["options"])


def test_data_set_shape() -> None:
    groups = axim.groups()
    counts = [len(g.products) for g in groups]
    assert len(groups) >= 110 and max(counts) <= 60
    assert counts.count(0) >= 3 and sum(c > 50 for c in counts) >= 3
    assert any(not g.info["status"] for g in groups)
    assert any(g.info["restrictAccess"] for g in groups)
    skus = [p["sku"] for g in groups for p in g.products]
    variant_skus = [v["sku"] for g in groups for p in g.products for v in p["variants"]]
    assert len(set(skus)) == len(skus) and len(set(variant_skus)) == len(variant_skus)


@pytest.mark.parametrize(("name", "sent", "expected"), [
    ("limit", 50, 50), ("limit", 51, 50), ("limit", 500, 50), ("limit", 3, 3),
])
def test_group_limit_clamped(api: httpx.Client, name: str, sent: int, expected: int) -> None:
    body = get_all(api, **{name: sent})
    assert body["pagination"]["limit"] == expected
    assert len(body["data"]) == expected


def test_product_limit_clamped_and_paged_past_50(api: httpx.Client) -> None:
    group = big_group()
    body = get_all(api, search=group.info["name"], productLimit=80)
    found = next(g for g in body["data"] if g["id"] == group.info["id"])
    assert found["productPagination"]["limit"] == 50 and len(found["products"]) == 50
    body = get_all(api, search=group.info["name"], productLimit=50, productPage=2)
    found = next(g for g in body["data"] if g["id"] == group.info["id"])
    assert found["productPagination"] == {"page": 2, "total": len(group.products),
                                          "count": len(group.products) - 50, "limit": 50}
    assert [p["id"] for p in found["products"]] == [p["id"] for p in group.products[50:]]


def test_group_paging_past_end(api: httpx.Client) -> None:
    body = get_all(api, page=99, limit=50)
    assert body["data"] == []
    assert body["pagination"] == {"page": 99, "total": len(axim.groups()), "count": 0, "limit": 50}


def test_group_search_case_insensitive(api: httpx.Client) -> None:
    body = get_all(api, search="eLeCtRoNiCs", limit=50)
    names = [g["name"] for g in body["data"]]
    expected = [g.info["name"] for g in axim.groups() if "electronics" in g.info["name"].lower()]
    assert names == expected and len(names) >= 2
    assert body["pagination"]["total"] == len(expected)


def test_product_search_by_name_sku_and_variant_sku(api: httpx.Client) -> None:
    group = big_group()
    product = group.products[7]
    variant_sku = product["variants"][0]["sku"]
    for needle in (product["sku"].lower(), variant_sku, product["name"].upper()):
        body = get_all(api, search=group.info["name"], productSearch=needle, productLimit=50)
        found = next(g for g in body["data"] if g["id"] == group.info["id"])
        assert product["id"] in [p["id"] for p in found["products"]]
        assert found["productCount"] == len(group.products)
        assert found["productPagination"]["total"] == len(found["products"])
    assert variant_sku.lower() not in product["name"].lower()


def test_product_search_keeps_groups_without_matches(api: httpx.Client) -> None:
    sku = big_group().products[0]["sku"]
    body = get_all(api, productSearch=sku, limit=50)
    assert len(body["data"]) == 50
    hits = [g for g in body["data"] if g["products"]]
    assert len(hits) <= 1
    empty = next(g for g in body["data"] if not g["products"])
    assert empty["productPagination"]["total"] == 0 and empty["productPagination"]["count"] == 0


def test_dual_pagination_matches_group_endpoint(api: httpx.Client) -> None:
    group = big_group()
    body = get_all(api, search=group.info["name"], productPage=2, productLimit=7)
    in_all = next(g for g in body["data"] if g["id"] == group.info["id"])
    one = get_one(api, group.info["id"], page=2, limit=7)
    assert [p["id"] for p in in_all["products"]] == [p["id"] for p in one["products"]]
    assert in_all["products"] == one["products"]
    assert in_all["productPagination"] == one["pagination"]


def test_group_endpoint_defaults_and_envelope(api: httpx.Client) -> None:
    group = big_group()
    response = api.get(f"/productGroup/{group.info['id']}")
    body = response.json()
    assert set(body) == {"success", "data"} and body["success"] is True
    data = body["data"]
    assert set(data) == {"productGroup", "products", "pagination"}
    assert data["productGroup"] == group.info and set(data["productGroup"]) == GROUP_KEYS
    assert data["pagination"] == {"page": 1, "total": len(group.products), "count": 10,
                                  "limit": 10}
    assert [p["id"] for p in data["products"]] == [p["id"] for p in group.products[:10]]


def test_group_endpoint_limit_clamp_and_search(api: httpx.Client) -> None:
    group = big_group()
    data = get_one(api, group.info["id"], limit=999)
    assert data["pagination"]["limit"] == 50 and len(data["products"]) == 50
    sku = group.products[3]["sku"]
    data = get_one(api, group.info["id"], search=sku.lower())
    assert [p["sku"] for p in data["products"]] == [sku]
    assert data["pagination"]["total"] == 1


def test_empty_group(api: httpx.Client) -> None:
    group = next(g for g in axim.groups() if not g.products)
    data = get_one(api, group.info["id"])
    assert data["products"] == []
    assert data["pagination"] == {"page": 1, "total": 0, "count": 0, "limit": 10}


def test_open_api_prefix(api: httpx.Client) -> None:
    group = big_group()
    plain = api.get("/productGroup/all", params={"limit": 2}).json()
    prefixed = api.get("/open-api/api/productGroup/all", params={"limit": 2}).json()
    assert plain == prefixed
    response = api.get(f"/open-api/api/productGroup/{group.info['id']}")
    assert response.status_code == 200
    assert response.json()["data"]["productGroup"]["id"] == group.info["id"]


@pytest.mark.parametrize("token", ["", "wrong-token", f"Bearer {axim.DEMO_TOKEN}"])
@pytest.mark.parametrize("path", ["/productGroup/all", "/open-api/api/productGroup/all"])
def test_auth_failure(emulator: Emulator, token: str, path: str) -> None:
    with emulator("axim").client(token=token) as client:
        response = client.get(path)
    assert response.status_code == 401
    assert response.json() == {"success": False, "message": "Access token is invalid or missing."}


@pytest.mark.parametrize(("path", "param", "value"), [
    ("/productGroup/all", "page", "0"),
    ("/productGroup/all", "limit", "abc"),
    ("/productGroup/all", "productPage", "-1"),
    ("/productGroup/all", "productLimit", "2.5"),
    ("/productGroup/{id}", "page", "x"),
    ("/productGroup/{id}", "limit", "0"),
])
def test_bad_numbers_answer_400(api: httpx.Client, path: str, param: str, value: str) -> None:
    path = path.replace("{id}", axim.groups()[0].info["id"])
    response = api.get(path, params={param: value})
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and param in body["message"]


@pytest.mark.parametrize("bad_id", ["123", "66D220C8F57178681728212E", "zz" * 12])
def test_malformed_id_answers_400(api: httpx.Client, bad_id: str) -> None:
    response = api.get(f"/productGroup/{bad_id}")
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_unknown_id_answers_404(api: httpx.Client) -> None:
    response = api.get("/open-api/api/productGroup/" + "0" * 24)
    assert response.status_code == 404
    assert response.json() == {"success": False, "message": "Product group not found"}


def test_injected_500(emulator: Emulator) -> None:
    running = emulator("axim")
    running.faults.set(status=500)
    with running.client() as client:
        response = client.get("/productGroup/all")
    assert response.status_code == 500


def test_request_log(emulator: Emulator) -> None:
    running = emulator("axim")
    with running.client() as client:
        client.get("/productGroup/all", params={"limit": 3, "productSearch": "abc"})
        client.get("/open-api/api/productGroup/" + "0" * 24)
    records = running.log.records
    assert [(r.path, r.status) for r in records] == [
        ("/productGroup/all", 200), ("/open-api/api/productGroup/" + "0" * 24, 404)]
    assert records[0].param("limit") == "3" and records[0].param("productSearch") == "abc"
    assert records[0].headers["accesstoken"] == axim.DEMO_TOKEN
