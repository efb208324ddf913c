"""The Joptic emulator over real HTTP: clamped paging, search, isActive, sort fallbacks, auth."""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningEmulator

EmulatorGetter = Callable[[str], RunningEmulator]
GROUP_FIELDS = ("id", "store", "name", "status", "parent", "createdAt", "updatedAt")
PAGINATION_FIELDS = ("page", "limit", "total", "totalPages", "hasNext", "hasPrev")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_CLIENTS: dict[str, httpx.Client] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_clients() -> Iterator[None]:
    """``fetch`` keeps one keep-alive client per emulator (a new client costs ~50 ms)."""
    yield
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()


@pytest.fixture
def jo(emulator: EmulatorGetter) -> RunningEmulator:
    return emulator("joptic")


@pytest.fixture(scope="module")
def everything(emulator_servers: dict[str, RunningEmulator]) -> list[dict[str, Any]]:
    """Every group in the default order (createdAt desc), fetched once for the module."""
    return all_groups(emulator_servers["joptic"])


def fetch(running: RunningEmulator, **params: Any) -> httpx.Response:
    client = _CLIENTS.get(running.url)
    if client is None:
        client = _CLIENTS[running.url] = running.client()
    return client.get("/product-groups", params=params)


def page_of(running: RunningEmulator, **params: Any) -> dict[str, Any]:
    response = fetch(running, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def all_groups(running: RunningEmulator, **params: Any) -> list[dict[str, Any]]:
    """Every group in the order the emulator serves them, 100 per page."""
    groups: list[dict[str, Any]] = []
    page = 1
    while True:
        body = page_of(running, page=page, limit=100, **params)
        groups += body["data"]
        if not body["pagination"]["hasNext"]:
            return groups
        page += 1


def expected_order(groups: list[dict[str, Any]], field: str, desc: bool) -> list[str]:
    present = sorted((g for g in groups if g[field] is not None), key=lambda g: g["id"])
    present.sort(key=lambda g: g[field], reverse=desc)
    absent = sorted((g for g in groups if g[field] is None), key=lambda g: g["id"])
    return [g["id"] for g in present + absent]


# --- envelope, defaults, data set ----------------------------------------------------------


def test_defaults_page_1_limit_10_created_at_desc(
        jo: RunningEmulator, everything: list[dict[str, Any]]) -> None:
    body = page_of(jo)
    pagination = body["pagination"]
    assert (pagination["page"], pagination["limit"]) == (1, 10)
    assert len(body["data"]) == 10
    assert pagination["total"] >= 260
    assert pagination["totalPages"] == math.ceil(pagination["total"] / 10)
    assert (pagination["hasNext"], pagination["hasPrev"]) == (True, False)
    assert [g["id"] for g in body["data"]] == expected_order(everything, "createdAt", True)[:10]


def test_envelope_and_field_types(jo: RunningEmulator) -> None:
    body = page_of(jo, limit=100)
    assert tuple(body) == ("data", "pagination")
    assert tuple(body["pagination"]) == PAGINATION_FIELDS
    for key in ("page", "limit", "total", "totalPages"):
        assert type(body["pagination"][key]) is int
    assert type(body["pagination"]["hasNext"]) is bool
    assert type(body["pagination"]["hasPrev"]) is bool
    for group in body["data"]:
        assert tuple(group) == GROUP_FIELDS
        assert re.fullmatch(r"clx[a-z0-9]{22}", group["id"])
        assert group["store"] is None or isinstance(group["store"], str)
        assert group["name"] is None or isinstance(group["name"], str)
        assert group["status"] in (0, 1)
        assert group["parent"] is None or re.fullmatch(r"clx[a-z0-9]{22}", group["parent"])
        assert ISO.fullmatch(group["createdAt"])
        assert group["updatedAt"] is None or ISO.fullmatch(group["updatedAt"])


def test_data_set_shape(everything: list[dict[str, Any]]) -> None:
    groups = everything
    ids = {g["id"] for g in groups}
    assert len(groups) >= 260 and len(ids) == len(groups)
    assert 0.10 <= sum(g["status"] == 0 for g in groups) / len(groups) <= 0.20
    parents = [g["parent"] for g in groups if g["parent"]]
    assert len(parents) > 50 and set(parents) <= ids
    stores = Counter(g["store"] for g in groups)
    assert stores[None] > len(groups) / 2 and len(stores) > 1
    assert 0 < sum(g["name"] is None for g in groups) < 10
    assert 0 < sum(g["updatedAt"] is None for g in groups) < len(groups) / 5
    assert {g["createdAt"][:4] for g in groups} == {"2022", "2023", "2024", "2025"}
    assert max(Counter(g["createdAt"] for g in groups).values()) > 1
    names = {g["name"] for g in groups}
    assert {"1.56", "Progressive", "Single vision lenses", "Frames - Acetate"} <= names


# --- paging ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("0", 1), ("-3", 1), ("1", 1), ("55", 55), ("100", 100), ("101", 100), ("5000", 100),
    ("abc", 10), ("2.5", 10), ("", 10),
])
def test_limit_default_and_clamp(jo: RunningEmulator, value: str, expected: int) -> None:
    body = page_of(jo, limit=value)
    assert body["pagination"]["limit"] == expected
    assert len(body["data"]) == expected
    assert body["pagination"]["totalPages"] == math.ceil(body["pagination"]["total"] / expected)


@pytest.mark.parametrize(("value", "expected"), [
    ("0", 1), ("-2", 1), ("x", 1), ("", 1), ("3", 3),
])
def test_page_default_and_clamp(jo: RunningEmulator, value: str, expected: int) -> None:
    body = page_of(jo, page=value, limit=5)
    assert body["pagination"]["page"] == expected
    assert body["pagination"]["hasPrev"] is (expected > 1)
    assert body["data"] == page_of(jo, page=expected, limit=5)["data"]


def test_pages_partition_the_list(jo: RunningEmulator, everything: list[dict[str, Any]]) -> None:
    second = page_of(jo, page=2, limit=7)
    assert second["data"] == everything[7:14]
    assert len({g["id"] for g in everything}) == second["pagination"]["total"] == len(everything)


def test_last_page_and_past_the_end(jo: RunningEmulator) -> None:
    total = page_of(jo)["pagination"]["total"]
    last_page = math.ceil(total / 100)
    last = page_of(jo, page=last_page, limit=100)
    assert len(last["data"]) == total - 100 * (last_page - 1)
    assert (last["pagination"]["hasNext"], last["pagination"]["hasPrev"]) == (False, True)
    past = page_of(jo, page=last_page + 1, limit=100)
    assert past["data"] == []
    assert past["pagination"] == {"page": last_page + 1, "limit": 100, "total": total,
                                  "totalPages": last_page, "hasNext": False, "hasPrev": True}


# --- filters ---------------------------------------------------------------------------------


def test_search_is_a_case_insensitive_substring(
        jo: RunningEmulator, everything: list[dict[str, Any]]) -> None:
    matches = all_groups(jo, search="LENS")
    expected = [g for g in everything if g["name"] is not None and "lens" in g["name"].lower()]
    assert matches == expected and 0 < len(matches) < len(everything)
    assert page_of(jo, search="LENS")["pagination"]["total"] == len(matches)


def test_search_never_matches_null_names(jo: RunningEmulator) -> None:
    assert all(g["name"] is not None for g in all_groups(jo, search="."))
    assert page_of(jo, search="no such group")["pagination"]["total"] == 0


def test_empty_search_is_ignored(jo: RunningEmulator) -> None:
    assert page_of(jo, search="")["pagination"] == page_of(jo)["pagination"]


@pytest.mark.parametrize(("value", "status"), [
    ("true", 1), ("1", 1), ("TRUE", 1), ("false", 0), ("0", 0), ("False", 0),
])
def test_is_active_filters_status(
        jo: RunningEmulator, everything: list[dict[str, Any]], value: str, status: int) -> None:
    groups = all_groups(jo, isActive=value)
    assert groups == [g for g in everything if g["status"] == status]


@pytest.mark.parametrize("value", ["yes", "2", ""])
def test_other_is_active_values_are_ignored(jo: RunningEmulator, value: str) -> None:
    assert page_of(jo, isActive=value)["pagination"]["total"] == \
        page_of(jo)["pagination"]["total"]


def test_store_is_not_a_filter(jo: RunningEmulator) -> None:
    assert page_of(jo, store="store-1")["data"] == page_of(jo)["data"]


def test_filters_combine(jo: RunningEmulator) -> None:
    groups = all_groups(jo, search="frames", isActive="false")
    assert groups and all(g["status"] == 0 and "frames" in g["name"].lower() for g in groups)


# --- sorting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["createdAt", "updatedAt", "name"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sort_by_mapped_fields(jo: RunningEmulator, field: str, order: str) -> None:
    groups = all_groups(jo, sortBy=field, sortOrder=order)
    assert [g["id"] for g in groups] == expected_order(groups, field, order == "desc")
    values = [g[field] for g in groups]
    if field != "createdAt":  # nulls last whichever the direction
        first_null = values.index(None)
        assert first_null > 0 and all(v is None for v in values[first_null:])


@pytest.mark.parametrize("sort_by", ["title", "ref", "status", "bogus"])
def test_unmapped_sort_by_falls_back_to_created_at(
        jo: RunningEmulator, everything: list[dict[str, Any]], sort_by: str) -> None:
    served = page_of(jo, sortBy=sort_by, sortOrder="asc", limit=100)["data"]
    assert [g["id"] for g in served] == expected_order(everything, "createdAt", False)[:100]


@pytest.mark.parametrize("order", ["sideways", ""])
def test_other_sort_order_is_desc(jo: RunningEmulator, order: str) -> None:
    desc = page_of(jo, sortBy="name", sortOrder="desc", limit=100)["data"]
    assert page_of(jo, sortBy="name", sortOrder=order, limit=100)["data"] == desc
    assert page_of(jo, sortBy="name", sortOrder="asc", limit=100)["data"] != desc


def test_ties_broken_by_id_ascending_in_both_orders(jo: RunningEmulator) -> None:
    for order in ("asc", "desc"):
        groups = all_groups(jo, sortOrder=order)
        by_created: dict[str, list[str]] = {}
        for group in groups:
            by_created.setdefault(group["createdAt"], []).append(group["id"])
        ties = [ids for ids in by_created.values() if len(ids) > 1]
        assert ties and all(ids == sorted(ids) for ids in ties)


# --- auth and log ----------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "nope"])
def test_missing_or_wrong_token_is_401(jo: RunningEmulator, token: str) -> None:
    with jo.client(token=token) as client:
        response = client.get("/product-groups")
    assert response.status_code == 401
    assert response.json() == {"statusCode": 401, "message": "Unauthorized"}


def test_request_log_records_the_call(jo: RunningEmulator) -> None:
    fetch(jo, page=2, limit=5, search="lens")
    deadline = time.monotonic() + 2
    while not len(jo.log) and time.monotonic() < deadline:
        time.sleep(0.005)
    (record,) = jo.log.records
    assert (record.method, record.path, record.status) == ("GET", "/product-groups", 200)
    assert record.params == {"page": ["2"], "limit": ["5"], "search": ["lens"]}


def test_injected_503_and_count(jo: RunningEmulator) -> None:
    jo.faults.set(status=503, retry_after=2, count=1)
    first, second = fetch(jo), fetch(jo)
    assert (first.status_code, first.headers["retry-after"]) == (503, "2")
    assert second.status_code == 200
