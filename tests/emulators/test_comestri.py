"""The Comestri emulator over real HTTP: envelope, paging, filters, field selection and errors."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import gateway.emulators.comestri as comestri
from tests.conftest import RunningEmulator

Emulator = Callable[[str], RunningEmulator]
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ALWAYS = {"id", "code", "created_at", "updated_at"}
DEFAULT_FIELDS = ALWAYS | {"product_type", "status", "product_attributes", "name", "class_type",
                           "discontinued", "product_class", "attribute_values"}
ROOTS = [p for p in comestri.products() if p.parent_id is None]
CHILDREN = [p for p in comestri.products() if p.parent_id is not None]


@pytest.fixture
def api(emulator: Emulator) -> Iterator[httpx.Client]:
    with emulator("comestri").client() as client:
        yield client


def get(api: httpx.Client, **params: Any) -> dict[str, Any]:
    response = api.get("/products", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def all_entries(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    page = 1
    while True:
        body = get(api, per_page=250, page=page, **params)
        entries += body["entries"]
        if page >= body["total_pages"]:
            return entries
        page += 1


def error_params(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [item["param"] for item in response.json()["errors"]]


def test_defaults_and_envelope(api: httpx.Client) -> None:
    body = get(api)
    assert set(body) == {"page", "per_page", "total_pages", "total_entries", "entries"}
    assert (body["page"], body["per_page"]) == (1, 50)
    assert body["total_entries"] == len(ROOTS) >= 520
    assert body["total_pages"] == math.ceil(len(ROOTS) / 50)
    assert len(body["entries"]) == 50
    entry = body["entries"][0]
    assert set(entry) == DEFAULT_FIELDS
    assert isinstance(entry["id"], int) and isinstance(entry["discontinued"], bool)
    assert entry["product_type"] is None and entry["product_attributes"] is None
    assert ISO_Z.fullmatch(entry["created_at"]) and ISO_Z.fullmatch(entry["updated_at"])
    assert set(entry["product_class"]) == {"id", "name"}
    for value in entry["attribute_values"]:
        assert set(value) == {"attribute_definition_id", "attribute_definition_code", "data"}


def test_order_by_id_and_pages_are_disjoint(api: httpx.Client) -> None:
    first = get(api, per_page=40)["entries"]
    second = get(api, per_page=40, page=2)["entries"]
    ids = [e["id"] for e in first + second]
    assert ids == sorted(ids) and len(set(ids)) == 80
    assert ids == [p.id for p in ROOTS[:80]]


def test_data_set_shape() -> None:
    products = comestri.products()
    assert len(ROOTS) >= 520 and 120 <= len(CHILDREN) <= 200
    assert len({p.product_class["id"] for p in products}) >= 12
    codes = {a["attribute_definition_code"] for p in products for a in p.attribute_values}
    assert {"country_of_origin", "short_description", "season", "description", "material",
            "colour"} <= codes and len(codes) >= 8
    assert len({p.code for p in products}) == len(products)
    ids = [p.id for p in products]
    assert ids == sorted(ids) and ids[-1] - ids[0] + 1 > len(ids)
    assert 0.05 < sum(p.status == "inactive" for p in ROOTS) / len(ROOTS) < 0.15
    assert {p.created.year for p in products} == {2023, 2024, 2025}


@pytest.mark.parametrize(("per_page", "expected_len"), [("1", 1), ("250", 250), ("7", 7)])
def test_per_page(api: httpx.Client, per_page: str, expected_len: int) -> None:
    body = get(api, per_page=per_page)
    assert body["per_page"] == int(per_page) and len(body["entries"]) == expected_len
    assert body["total_pages"] == math.ceil(len(ROOTS) / int(per_page))


def test_page_past_end_is_empty(api: httpx.Client) -> None:
    body = get(api, page=99, per_page=250)
    assert body["entries"] == [] and body["page"] == 99
    assert body["total_entries"] == len(ROOTS)


@pytest.mark.parametrize(("param", "value"), [
    ("per_page", "abc"), ("per_page", "0"), ("per_page", "251"), ("per_page", "2.5"),
    ("page", "0"), ("page", "-3"), ("page", "x"),
    ("created_time_from", "yesterday"), ("created_time_to", "2024-13-01T00:00:00Z"),
    ("updated_time_from", "nope"), ("updated_time_to", "2024-01-01T25:00:00Z"),
    ("status", "archived"), ("root_products_only", "yes"),
    ("response_product_fields", "name,colour"), ("response_associated_fields", "brand,stock"),
])
def test_invalid_params_answer_422(api: httpx.Client, param: str, value: str) -> None:
    response = api.get("/products", params={param: value})
    assert error_params(response) == [param]
    assert response.json()["errors"][0]["message"]


def test_number_message_and_several_errors(api: httpx.Client) -> None:
    response = api.get("/products", params={"per_page": "many", "status": "gone"})
    assert error_params(response) == ["per_page", "status"]
    assert response.json()["errors"][0] == {"param": "per_page", "message": "Must be a number."}


def test_created_time_window_inclusive(api: httpx.Client) -> None:
    low, high = sorted((ROOTS[10].created, ROOTS[20].created))
    entries = all_entries(api, created_time_from=low.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          created_time_to=high.strftime("%Y-%m-%dT%H:%M:%SZ"))
    expected = [p.id for p in ROOTS if low <= p.created <= high]
    assert [e["id"] for e in entries] == expected
    assert {ROOTS[10].id, ROOTS[20].id} <= set(expected)


def test_updated_time_window_with_offset(api: httpx.Client) -> None:
    # 2024-06-01T10:00:00+10:00 is 2024-06-01T00:00:00Z
    entries = all_entries(api, updated_time_from="2024-06-01T10:00:00+10:00",
                          updated_time_to="2024-06-30T23:59:59Z")
    expected = [p.id for p in ROOTS
                if "2024-06-01T00:00:00" <= p.updated.strftime("%Y-%m-%dT%H:%M:%S")
                <= "2024-06-30T23:59:59"]
    assert [e["id"] for e in entries] == expected and expected
    assert all("2024-06" <= e["updated_at"] < "2024-07" for e in entries)


def test_id_code_name_status_filters(api: httpx.Client) -> None:
    target = ROOTS[42]
    assert [e["code"] for e in get(api, id=str(target.id))["entries"]] == [target.code]
    assert [e["id"] for e in get(api, code=target.code)["entries"]] == [target.id]
    assert get(api, code=target.code.upper())["total_entries"] == 0
    needle = target.name.split()[0].upper()
    names = all_entries(api, name=needle)
    assert names and all(needle.lower() in e["name"].lower() for e in names)
    assert len(names) == sum(needle.lower() in p.name.lower() for p in ROOTS)
    inactive = all_entries(api, status="inactive")
    assert inactive and all(e["status"] == "inactive" for e in inactive)
    assert len(inactive) + get(api, status="active")["total_entries"] == len(ROOTS)


def test_root_products_only(api: httpx.Client) -> None:
    assert get(api)["total_entries"] == get(api, root_products_only="true")["total_entries"]
    assert get(api, root_products_only="1")["total_entries"] == len(ROOTS)
    for flag in ("false", "0"):
        assert get(api, root_products_only=flag)["total_entries"] == len(ROOTS) + len(CHILDREN)
    child = CHILDREN[0]
    assert get(api, code=child.code)["total_entries"] == 0
    found = get(api, code=child.code, root_products_only="false")["entries"]
    assert [(e["id"], e["class_type"]) for e in found] == [(child.id, "sku")]
    parent = get(api, id=str(child.parent_id))["entries"][0]
    assert parent["class_type"] == "style" and child.code.startswith(parent["code"])


def test_product_field_selection(api: httpx.Client) -> None:
    entry = get(api, response_product_fields="name", per_page=1)["entries"][0]
    assert set(entry) == ALWAYS | {"name", "product_class", "attribute_values"}
    entry = get(api, response_product_fields="status,class_type", per_page=1)["entries"][0]
    assert set(entry) == ALWAYS | {"status", "class_type", "product_class", "attribute_values"}


def test_associated_field_selection(api: httpx.Client) -> None:
    entries = get(api, response_associated_fields="brand,product_categories,dimension,catalogs",
                  response_product_fields="name", per_page=250)["entries"]
    assert all(set(e) == ALWAYS | {"name", "brand", "product_categories", "dimension", "catalogs"}
               for e in entries)
    assert all(e["dimension"] is None and e["catalogs"] == [] for e in entries)
    brands = [e["brand"] for e in entries if e["brand"] is not None]
    assert brands and all(set(b) == {"id", "name"} for b in brands)
    assert any(e["product_categories"] for e in entries)


def test_empty_associated_list_means_none(api: httpx.Client) -> None:
    entry = get(api, response_associated_fields="", per_page=1)["entries"][0]
    assert set(entry) == DEFAULT_FIELDS - {"product_class", "attribute_values"}


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_unauthorized(emulator: Emulator, token: str) -> None:
    with emulator("comestri").client(token=token) as client:
        response = client.get("/products")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="comestri"'
    assert response.json()["error"] == "unauthorized" and response.json()["message"]


def test_raw_token_without_bearer_is_unauthorized(emulator: Emulator) -> None:
    running = emulator("comestri")
    with httpx.Client(base_url=running.url, headers={"Authorization": running.token}) as client:
        assert client.get("/products").status_code == 401


def test_forbidden_token(emulator: Emulator) -> None:
    with emulator("comestri").client(token=comestri.FORBIDDEN_TOKEN) as client:
        response = client.get("/products")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_injected_500(emulator: Emulator) -> None:
    running = emulator("comestri")
    running.faults.set(status=500)
    with running.client() as client:
        assert client.get("/products").status_code == 500


def test_unknown_path_is_404(api: httpx.Client) -> None:
    assert api.get("/orders").status_code == 404


def test_request_log(emulator: Emulator) -> None:
    running = emulator("comestri")
    with running.client() as client:
        client.get("/products", params={"per_page": 5, "status": "active"})
        client.get("/products", params={"per_page": "x"})
    records = running.log.records
    assert [(r.path, r.status) for r in records] == [("/products", 200), ("/products", 422)]
    assert records[0].param("per_page") == "5" and records[0].param("status") == "active"
    assert records[0].headers["authorization"] == f"Bearer {comestri.DEMO_TOKEN}"
