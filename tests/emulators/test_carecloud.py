"""The CareCloud emulator over real HTTP: paging, sorting, filters, languages, auth, faults."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.emulators.common import RecordedRequest
from tests.conftest import RunningEmulator

EmulatorGetter = Callable[[str], RunningEmulator]
FIELDS = ("product_group_id", "name", "parent_product_group_id", "parent_external_id", "code",
          "external_id", "store_id", "last_change", "state")


@pytest.fixture
def cc(emulator: EmulatorGetter) -> RunningEmulator:
    return emulator("carecloud")


_CLIENTS: dict[str, httpx.Client] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_clients() -> Iterator[None]:
    """``fetch`` keeps one keep-alive client per emulator (a new client costs ~50 ms)."""
    yield
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()


def fetch(running: RunningEmulator, headers: dict[str, str] | None = None,
          **params: Any) -> httpx.Response:
    client = _CLIENTS.get(running.url)
    if client is None:
        client = _CLIENTS[running.url] = running.client()
    return client.get("/product-groups", params=params, headers=headers)


def records(running: RunningEmulator, count: int) -> list[RecordedRequest]:
    """The log once it holds ``count`` records (it is written just after the response is sent)."""
    deadline = time.monotonic() + 2
    while len(running.log) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return running.log.records


def body_of(running: RunningEmulator, **params: Any) -> dict[str, Any]:
    response = fetch(running, **params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def all_groups(running: RunningEmulator, **params: Any) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = body_of(running, count=100_000, **params)["product_groups"]
    return groups


def expected_order(groups: list[dict[str, Any]], field: str, desc: bool) -> list[str]:
    numeric = field in ("product_group_id", "parent_product_group_id")

    def key(group: dict[str, Any]) -> tuple[bool, Any]:
        value = group[field]
        if value is None:
            return True, 0
        return False, int(value) if numeric else value

    ordered = sorted(groups, key=lambda g: int(g["product_group_id"]))
    ordered.sort(key=key, reverse=desc)
    return [g["product_group_id"] for g in ordered]


# --- defaults, envelope, data set -------------------------------------------------------------


def test_defaults_count_100_offset_0_ordered_by_numeric_id(cc: RunningEmulator) -> None:
    response = fetch(cc)
    assert response.status_code == 200
    assert response.headers["content-language"] == "cs"
    data = response.json()["data"]
    ids = [int(g["product_group_id"]) for g in data["product_groups"]]
    assert len(ids) == 100
    assert data["total_items"] >= 320
    assert ids == sorted(ids)
    assert ids[:5] == [int(g["product_group_id"]) for g in all_groups(cc)[:5]]


def test_envelope_and_field_types(cc: RunningEmulator) -> None:
    response = fetch(cc, count=1000)
    body = response.json()
    assert list(body) == ["data"]
    assert set(body["data"]) == {"product_groups", "total_items"}
    assert isinstance(body["data"]["total_items"], int)
    for group in body["data"]["product_groups"]:
        assert tuple(group) == FIELDS
        assert re.fullmatch(r"\d{4,6}", group["product_group_id"])
        assert isinstance(group["name"], str) and group["name"]
        for nullable in ("parent_product_group_id", "parent_external_id", "code", "store_id"):
            assert group[nullable] is None or isinstance(group[nullable], str)
        assert re.fullmatch(r"ext-\d{4}", group["external_id"])
        assert group["code"] is None or re.fullmatch(r"PG-\d{4}", group["code"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", group["last_change"])
        assert group["state"] in (0, 1)


def test_data_set_shape(cc: RunningEmulator) -> None:
    groups = all_groups(cc)
    by_id = {g["product_group_id"]: g for g in groups}
    by_ext = {g["external_id"]: g for g in groups}
    assert len(groups) >= 320 and len(by_id) == len(groups) == len(by_ext)
    roots = [g for g in groups if not g["parent_product_group_id"] and not g["parent_external_id"]]
    assert 35 <= len(roots) <= 45
    refs = Counter((g["parent_product_group_id"] is not None, g["parent_external_id"] is not None)
                   for g in groups if g not in roots)
    assert refs[(True, True)] and refs[(True, False)] and refs[(False, True)]
    for group in groups:
        parent_id, parent_ext = group["parent_product_group_id"], group["parent_external_id"]
        if parent_id and parent_ext:
            assert by_id[parent_id] is by_ext[parent_ext]
        assert parent_id is None or parent_id in by_id
        assert parent_ext is None or parent_ext in by_ext
    deleted = sum(g["state"] == 0 for g in groups) / len(groups)
    assert 0.04 <= deleted <= 0.12
    stores = Counter(g["store_id"] for g in groups)
    assert set(stores) == {None, "1", "2", "3"} and stores[None] > len(groups) / 2
    names = Counter(g["name"] for g in groups)
    assert max(names.values()) > 1 and len(names) > 0.9 * len(groups)
    assert 0 < sum(g["code"] is None for g in groups) < len(groups) / 10
    generation_order = sorted(groups, key=lambda g: g["external_id"])
    assert generation_order != groups  # ids are not in list order


def test_depth_at_most_three_levels_below_roots(cc: RunningEmulator) -> None:
    groups = all_groups(cc)
    by_id = {g["product_group_id"]: g for g in groups}
    by_ext = {g["external_id"]: g for g in groups}

    def depth(group: dict[str, Any]) -> int:
        parent_id, parent_ext = group["parent_product_group_id"], group["parent_external_id"]
        if parent_id is None and parent_ext is None:
            return 0
        return 1 + depth(by_id[parent_id] if parent_id else by_ext[parent_ext])

    depths = Counter(depth(g) for g in groups)
    assert set(depths) == {0, 1, 2, 3}


def test_data_is_deterministic(cc: RunningEmulator) -> None:
    import gateway.emulators.carecloud as carecloud

    before = carecloud.demo_groups()
    carecloud.demo_groups.cache_clear()
    assert carecloud.demo_groups() == before
    served = sorted(all_groups(cc), key=lambda g: g["external_id"])
    assert [g.render("cs") for g in before] == served


# --- paging ----------------------------------------------------------------------------------


def test_count_has_no_maximum(cc: RunningEmulator) -> None:
    data = body_of(cc, count=5000)
    assert len(data["product_groups"]) == data["total_items"] > 100


def test_offset_and_count_page_through_the_list(cc: RunningEmulator) -> None:
    everything = all_groups(cc)
    data = body_of(cc, offset=7, count=3)
    assert data["product_groups"] == everything[7:10]
    assert data["total_items"] == len(everything)
    past_end = body_of(cc, offset=len(everything) + 5)
    assert past_end == {"product_groups": [], "total_items": len(everything)}


@pytest.mark.parametrize(("name", "value"), [
    ("count", "0"), ("count", "-1"), ("count", "abc"), ("count", "2.5"),
    ("offset", "-1"), ("offset", "x"), ("offset", "1e3"),
])
def test_bad_count_or_offset_is_400_naming_the_parameter(
        cc: RunningEmulator, name: str, value: str) -> None:
    params: dict[str, Any] = {name: value}
    response = fetch(cc, **params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and f"'{name}'" in error["message"]


def test_count_1_and_offset_0_are_the_minimums(cc: RunningEmulator) -> None:
    assert len(body_of(cc, count=1, offset=0)["product_groups"]) == 1


# --- sorting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sort_by_every_first_level_field(cc: RunningEmulator, field: str, direction: str) -> None:
    groups = all_groups(cc, sort_field=field, sort_direction=direction)
    ids = [g["product_group_id"] for g in groups]
    assert ids == expected_order(groups, field, direction == "desc")


def test_sort_nulls_last_ascending_first_descending(cc: RunningEmulator) -> None:
    asc = all_groups(cc, sort_field="code")
    assert asc[-1]["code"] is None and asc[0]["code"] is not None
    desc = all_groups(cc, sort_field="code", sort_direction="desc")
    assert desc[0]["code"] is None and desc[-1]["code"] is not None


def test_sort_ties_broken_by_id_ascending(cc: RunningEmulator) -> None:
    for direction in ("asc", "desc"):
        groups = all_groups(cc, sort_field="state", sort_direction=direction)
        for state in (0, 1):
            ids = [int(g["product_group_id"]) for g in groups if g["state"] == state]
            assert ids == sorted(ids)
        assert groups[0]["state"] == (0 if direction == "asc" else 1)


def test_sort_direction_alone_applies_to_id(cc: RunningEmulator) -> None:
    ids = [int(g["product_group_id"]) for g in all_groups(cc, sort_direction="desc")]
    assert ids == sorted(ids, reverse=True)


def test_unknown_sort_field_is_400(cc: RunningEmulator) -> None:
    response = fetch(cc, sort_field="price")
    assert response.status_code == 400
    assert "'sort_field'" in response.json()["error"]["message"]


def test_bad_sort_direction_is_400(cc: RunningEmulator) -> None:
    response = fetch(cc, sort_field="name", sort_direction="up")
    assert response.status_code == 400
    assert "'sort_direction'" in response.json()["error"]["message"]


# --- filters ---------------------------------------------------------------------------------


def test_name_filter_is_a_case_insensitive_substring(cc: RunningEmulator) -> None:
    data = body_of(cc, name="SLUNEČNÍ", count=2)
    assert data["total_items"] > 2 and len(data["product_groups"]) == 2
    matches = all_groups(cc, name="SLUNEČNÍ")
    assert len(matches) == data["total_items"]
    assert all("sluneční" in g["name"].lower() for g in matches)
    expected = [g for g in all_groups(cc) if "sluneční" in g["name"].lower()]
    assert matches == expected


def test_name_filter_uses_the_response_language(cc: RunningEmulator) -> None:
    with cc.client() as client:
        english = client.get("/product-groups", params={"name": "sunglasses", "count": 1000},
                             headers={"Accept-Language": "en"}).json()["data"]
        czech = client.get("/product-groups", params={"name": "sunglasses"}).json()["data"]
    assert english["total_items"] > 0
    assert all("sunglasses" in g["name"].lower() for g in english["product_groups"])
    assert czech["total_items"] == 0


@pytest.mark.parametrize(("param", "value"), [
    ("store_id", "2"), ("code", "PG-0042"), ("external_id", "ext-0042"),
])
def test_exact_filters(cc: RunningEmulator, param: str, value: str) -> None:
    matches = all_groups(cc, **{param: value})
    assert matches and all(g[param] == value for g in matches)
    assert matches == [g for g in all_groups(cc) if g[param] == value]


def test_exact_filters_do_not_match_substrings(cc: RunningEmulator) -> None:
    assert body_of(cc, code="PG-004")["total_items"] == 0
    assert body_of(cc, external_id="EXT-0042")["total_items"] == 0


def test_filters_combine(cc: RunningEmulator) -> None:
    matches = all_groups(cc, store_id="1", name="brýle", sort_field="name")
    assert matches and all(g["store_id"] == "1" and "brýle" in g["name"].lower() for g in matches)


def test_deleted_groups_are_listed(cc: RunningEmulator) -> None:
    assert any(g["state"] == 0 for g in all_groups(cc, sort_field="state"))


# --- languages -------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "language"), [
    ("en", "en"), ("en-GB", "en"), ("cs, en-gb;q=0.8", "cs"), ("en-gb;q=0.8, cs;q=0.5", "en"),
    ("de, en;q=0.5, cs;q=0.3", "en"), ("fr, de", "cs"), ("en;q=0, cs;q=0.1", "cs"), ("*", "cs"),
])
def test_accept_language_negotiation(cc: RunningEmulator, header: str, language: str) -> None:
    response = fetch(cc, headers={"Accept-Language": header}, count=1)
    assert response.headers["content-language"] == language


def test_languages_name_the_same_group_differently(cc: RunningEmulator) -> None:
    czech = fetch(cc, headers={"Accept-Language": "cs"}, count=50).json()["data"]
    english = fetch(cc, headers={"Accept-Language": "en-US"}, count=50).json()["data"]
    pairs = list(zip(czech["product_groups"], english["product_groups"], strict=True))
    assert all(cs["product_group_id"] == en["product_group_id"] for cs, en in pairs)
    assert sum(cs["name"] != en["name"] for cs, en in pairs) > 40
    assert {k: v for k, v in pairs[0][0].items() if k != "name"} == \
        {k: v for k, v in pairs[0][1].items() if k != "name"}
    names = {g["name"] for g in all_groups(cc)}
    assert "Sluneční brýle" in names and "Kontaktní čočky" in names


# --- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_missing_or_wrong_token_is_401(cc: RunningEmulator, token: str) -> None:
    with cc.client(token=token) as client:
        response = client.get("/product-groups")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == 401 and isinstance(error["message"], str)


def test_other_scheme_is_401(cc: RunningEmulator) -> None:
    with cc.client(token="") as client:
        response = client.get("/product-groups", headers={"Authorization": cc.token})
    assert response.status_code == 401


async def test_custom_token_app() -> None:
    import gateway.emulators.carecloud as carecloud

    transport = httpx.ASGITransport(app=carecloud.create_app(token="other"))
    async with httpx.AsyncClient(transport=transport, base_url="http://cc") as client:
        ok = await client.get("/product-groups", headers={"Authorization": "Bearer other"})
        demo = await client.get("/product-groups",
                                headers={"Authorization": f"Bearer {carecloud.DEMO_TOKEN}"})
    assert (ok.status_code, demo.status_code) == (200, 401)


# --- request log and faults -------------------------------------------------------------------


def test_request_log_records_the_call(cc: RunningEmulator) -> None:
    fetch(cc, headers={"Accept-Language": "en"}, count=5, name="x")
    (record,) = records(cc, 1)
    assert (record.method, record.path, record.status) == ("GET", "/product-groups", 200)
    assert record.param("count") == "5" and record.param("name") == "x"
    assert record.headers["accept-language"] == "en"
    assert record.headers["authorization"] == f"Bearer {cc.token}"


def test_429_with_retry_after(cc: RunningEmulator) -> None:
    cc.faults.set(status=429, retry_after=1)
    response = fetch(cc)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == 429


def test_503(cc: RunningEmulator) -> None:
    cc.faults.set(status=503)
    response = fetch(cc)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == 503
    assert records(cc, 1)[-1].status == 503


def test_latency_adds_time(cc: RunningEmulator) -> None:
    cc.faults.set(latency_ms=200)
    started = time.monotonic()
    assert fetch(cc, count=1).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_fault_count_limits_to_next_requests(cc: RunningEmulator) -> None:
    cc.faults.set(status=503, count=2)
    statuses = [fetch(cc, count=1).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]


def test_fault_rate_with_seed_is_repeatable(cc: RunningEmulator) -> None:
    runs = []
    for _ in range(2):
        cc.faults.set(status=503, rate=0.5, seed=11)
        runs.append([fetch(cc, count=1).status_code for _ in range(8)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}
