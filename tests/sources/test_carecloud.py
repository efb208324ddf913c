"""CareCloudAdapter over real HTTP against the CareCloud emulator.

Expected values come from the emulator's raw JSON (read with a plain httpx client), so the adapter's
translation is checked against the upstream's own answer, not against itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gateway.caches.bounded import ByteBoundedLRU
from gateway.caches.store import ResponseStore
from gateway.config import SourceConfig
from gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from gateway.scope import RequestScope
from gateway.sources.carecloud import CareCloudAdapter
from gateway.sources.query import GroupFilter
from gateway.sources.records import GroupStatus
from gateway.upstream.client import UpstreamClient
from gateway.upstream.stack import build_transport, health_for
from gateway.window import Window
from tests.clock import ManualClock
from tests.conftest import RunningEmulator

EmulatorGetter = Callable[[str], RunningEmulator]
Factory = Callable[..., CareCloudAdapter]
ORDER = {"sort_field": ["product_group_id"], "sort_direction": ["asc"]}


@pytest.fixture(scope="module")
def raw(emulator_servers: dict[str, RunningEmulator]) -> dict[str, list[dict[str, Any]]]:
    """The whole table per language, straight from the emulator (id order)."""
    running = emulator_servers["carecloud"]
    with running.client() as client:
        return {lang: client.get("/product-groups", params={"count": 10_000},
                                 headers={"Accept-Language": lang}).json()["data"]["product_groups"]
                for lang in ("cs", "en")}


@pytest.fixture
def cc(emulator: EmulatorGetter) -> RunningEmulator:
    return emulator("carecloud")


@pytest.fixture
async def make(cc: RunningEmulator, manual: ManualClock) -> AsyncIterator[Factory]:
    """``make(timezone=..., token=...)``: an adapter on the emulator and the test's clock."""
    clients: list[UpstreamClient] = []

    def factory(*, stack: bool = False, **overrides: Any) -> CareCloudAdapter:
        """With ``stack``, the client has the upstream policy stack (and its response cache)."""
        settings: dict[str, Any] = {"name": "carecloud", "kind": "carecloud", "base_url": cc.url,
                                    "token": cc.token, **overrides}
        config = SourceConfig(**settings)
        transport = build_transport(
            config, store=ResponseStore("memory://", namespace="t", clock=manual.clock),
            health=health_for(config, clock=manual.clock), clock=manual.clock) if stack else None
        client = UpstreamClient(config, auth_headers=CareCloudAdapter.auth_headers(config.secret()),
                                transport=transport, clock=manual.clock)
        clients.append(client)
        return CareCloudAdapter(config, client, clock=manual.clock)

    yield factory
    for client in clients:
        await client.aclose()


def _params(record: Any) -> dict[str, list[str]]:
    params: dict[str, list[str]] = record.params
    return params


async def test_window_is_one_offset_count_request(make: Factory, cc: RunningEmulator,
                                                  raw: dict[str, list[dict[str, Any]]]) -> None:
    page = await make().list_groups(GroupFilter(), Window(10, 25), RequestScope())
    assert [g.upstream_id for g in page.items] == [
        g["product_group_id"] for g in raw["cs"][10:35]]
    assert page.total == len(raw["cs"])
    [request] = cc.log.records
    assert request.path == "/product-groups"
    assert _params(request) == {"offset": ["10"], "count": ["25"], **ORDER}
    assert request.headers["authorization"] == f"Bearer {cc.token}"


async def test_window_past_the_end_is_short(make: Factory, cc: RunningEmulator,
                                            raw: dict[str, list[dict[str, Any]]]) -> None:
    total = len(raw["cs"])
    page = await make().list_groups(GroupFilter(), Window(total - 3, 10), RequestScope())
    assert len(page.items) == 3 and page.total == total
    assert len(cc.log) == 1


async def test_records_parse(make: Factory, raw: dict[str, list[dict[str, Any]]]) -> None:
    table = await make().group_table(RequestScope())
    assert len(table) == len(raw["cs"])
    for group, row in zip(table, raw["cs"], strict=True):
        assert group.upstream_id == row["product_group_id"]
        assert (group.name, group.code, group.external_id, group.store_id) == (
            row["name"], row["code"], row["external_id"], row["store_id"])
        assert group.status is (GroupStatus.ACTIVE if row["state"] == 1 else GroupStatus.DELETED)
        assert (group.parent_id, group.parent_external_id) == (
            row["parent_product_group_id"], row["parent_external_id"])
        assert group.created_at is None and group.updated_at is not None
        assert group.updated_at.utcoffset() == timedelta(0)
        assert group.updated_at.strftime("%Y-%m-%d %H:%M:%S") == row["last_change"]
        assert group.source.id == "carecloud"
    statuses = {g.status for g in table}
    assert statuses == {GroupStatus.ACTIVE, GroupStatus.DELETED}
    assert any(g.parent_id is None and g.parent_external_id is not None for g in table)
    assert any(g.parent_id is not None and g.parent_external_id is None for g in table)


async def test_last_change_is_local_time_of_the_configured_zone(
        make: Factory, raw: dict[str, list[dict[str, Any]]]) -> None:
    utc = await make().group_table(RequestScope())
    prague = await make(timezone="Europe/Prague").group_table(RequestScope())
    offsets = set()
    for in_utc, in_prague, row in zip(utc, prague, raw["cs"], strict=True):
        assert in_utc.updated_at is not None and in_prague.updated_at is not None
        assert in_prague.updated_at.strftime("%Y-%m-%d %H:%M:%S") == row["last_change"]
        shift = in_utc.updated_at - in_prague.updated_at  # same wall clock, earlier instant
        assert shift in (timedelta(hours=1), timedelta(hours=2))
        offsets.add(shift)
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}  # winter and summer both seen


def _pushdown_cases() -> list[tuple[str, str, Callable[[list[dict[str, Any]]], str]]]:
    return [
        ("search", "name", lambda rows: "ray-ban"),
        ("store_id", "store_id", lambda rows: "2"),
        ("code", "code", lambda rows: next(r["code"] for r in rows[7:] if r["code"])),
        ("external_id", "external_id", lambda rows: str(rows[11]["external_id"])),
    ]


@pytest.mark.parametrize(("attribute", "parameter", "pick"), _pushdown_cases())
async def test_filter_pushdown(make: Factory, cc: RunningEmulator,
                               raw: dict[str, list[dict[str, Any]]], attribute: str,
                               parameter: str,
                               pick: Callable[[list[dict[str, Any]]], str]) -> None:
    value = pick(raw["cs"])
    arguments: dict[str, Any] = {attribute: value}
    group_filter = GroupFilter(**arguments)
    adapter = make()
    assert adapter.unpushable(group_filter) is None
    page = await adapter.list_groups(group_filter, Window(0, 1000), RequestScope())
    table = await adapter.group_table(RequestScope())
    expected = [g.upstream_id for g in table if group_filter.matches(g)]
    assert expected and [g.upstream_id for g in page.items] == expected
    assert page.total == len(expected)
    first = cc.log.records[0]
    assert first.param(parameter) == value
    assert first.param("sort_field") == "product_group_id"


async def test_filters_combine(make: Factory, cc: RunningEmulator) -> None:
    group_filter = GroupFilter(search="brýle", store_id="1")
    page = await make().list_groups(group_filter, Window(0, 1000), RequestScope())
    assert page.items and all(group_filter.matches(g) for g in page.items)
    [request] = cc.log.records
    assert (request.param("name"), request.param("store_id")) == ("brýle", "1")


async def test_unpushable(make: Factory) -> None:
    adapter = make()
    for status in GroupStatus:
        assert adapter.unpushable(GroupFilter(status=status)) == "status"
        assert adapter.unpushable(GroupFilter(search="x", status=status)) == "status"
    assert adapter.unpushable(GroupFilter()) is None
    assert adapter.unpushable(GroupFilter(search="x", store_id="1", code="c",
                                          external_id="e")) is None


async def test_language_reaches_the_upstream(make: Factory, cc: RunningEmulator,
                                             raw: dict[str, list[dict[str, Any]]]) -> None:
    adapter = make()
    czech = await adapter.list_groups(GroupFilter(), Window(0, 5), RequestScope(language="cs"))
    english = await adapter.list_groups(GroupFilter(), Window(0, 5), RequestScope(language="en"))
    assert [g.name for g in czech.items] == [r["name"] for r in raw["cs"][:5]]
    assert [g.name for g in english.items] == [r["name"] for r in raw["en"][:5]]
    assert [g.name for g in czech.items] != [g.name for g in english.items]
    assert [r.headers.get("accept-language") for r in cc.log.records] == ["cs", "en"]


async def test_configured_language_is_the_default(make: Factory, cc: RunningEmulator,
                                                  raw: dict[str, list[dict[str, Any]]]) -> None:
    adapter = make(language="en-GB")
    page = await adapter.list_groups(GroupFilter(), Window(0, 3), RequestScope())
    assert [g.name for g in page.items] == [r["name"] for r in raw["en"][:3]]
    await adapter.list_groups(GroupFilter(), Window(0, 3), RequestScope(language="cs"))
    await adapter.list_groups(GroupFilter(), Window(0, 3), RequestScope(language="de, fr"))
    # The configured value is mapped to a language the source serves, like a client's.
    assert [r.headers.get("accept-language") for r in cc.log.records] == ["en", "cs", "en"]


@pytest.mark.parametrize(("header", "sent"), [
    (None, "cs"),  # the upstream's own default (seed doc 000: "cs, en-gb;q=0.8")
    ("en", "en"), ("EN-gb", "en"), ("en-GB-x-private", "en"), ("cs-CZ", "cs"),
    ("de, en;q=0.5, cs;q=0.4", "en"), ("cs;q=0.1, en;q=0.9", "en"), ("cs, en", "cs"),
    ("en;q=0, cs;q=0.1", "cs"), ("*", "cs"), ("de", "cs"), ("de-AT, fr;q=0.9", "cs"),
    ("en;q=0", "cs"), ("", "cs"),
])
async def test_the_client_ranges_map_to_a_language_the_source_serves(
        make: Factory, cc: RunningEmulator, header: str | None, sent: str) -> None:
    adapter = make()
    assert adapter.language(RequestScope(language=header)) == sent
    await adapter.list_groups(GroupFilter(), Window(0, 1), RequestScope(language=header))
    assert [r.headers.get("accept-language") for r in cc.log.records] == [sent]


async def test_configured_languages_replace_the_documented_ones(make: Factory) -> None:
    adapter = make(languages=("de", "en"), language="de")
    assert adapter.language(RequestScope(language="de-AT")) == "de"
    assert adapter.language(RequestScope(language="cs")) == "de"
    assert adapter.language(RequestScope(language="en-US")) == "en"


async def test_language_search_uses_the_response_language(make: Factory, cc: RunningEmulator
                                                          ) -> None:
    adapter = make()
    english = await adapter.list_groups(GroupFilter(search="glasses"), Window(0, 1000),
                                        RequestScope(language="en"))
    czech = await adapter.list_groups(GroupFilter(search="glasses"), Window(0, 1000),
                                      RequestScope(language="cs"))
    assert english.total and all("glasses" in (g.name or "").lower() for g in english.items)
    assert czech.total == 0


async def test_group_table_is_one_request_and_memoized(make: Factory, cc: RunningEmulator,
                                                       manual: ManualClock,
                                                       raw: dict[str, list[dict[str, Any]]]
                                                       ) -> None:
    adapter, scope = make(stack=True, group_cache_ttl_seconds=300), RequestScope()
    table = await adapter.group_table(scope)
    assert len(table) == len(raw["cs"])
    [request] = cc.log.records
    assert _params(request) == {"offset": ["0"], "count": ["5000"], **ORDER}
    assert await adapter.group_table(scope) is table
    row = raw["cs"][42]
    by_id = await adapter.groups_by_ids([row["product_group_id"], "no-such-id"], scope)
    by_ext = await adapter.groups_by_external_ids([row["external_id"]], scope)
    assert list(by_id) == [row["product_group_id"]]
    assert by_ext[row["external_id"]] is by_id[row["product_group_id"]]
    assert len(cc.log) == 1  # all answered from the memoized table
    manual.advance(299.0)
    assert await adapter.group_table(RequestScope()) is table  # kept for the 300 s group TTL
    assert len(cc.log) == 1
    en = await adapter.group_table(RequestScope(language="en"))  # kept per language
    assert en is not table and len(cc.log) == 2
    manual.advance(2.0)
    again = await adapter.group_table(RequestScope())  # past the TTL: read again
    assert again is not table and len(cc.log) == 3
    assert [g.upstream_id for g in again] == [g.upstream_id for g in table]
    uncached = make(stack=True, group_cache_ttl_seconds=0)
    await uncached.group_table(RequestScope())
    await uncached.group_table(RequestScope())
    assert len(cc.log) == 5  # without a group TTL each request reads it again


async def test_group_tables_of_many_languages_stay_within_the_memo_bound(
    make: Factory, cc: RunningEmulator,
) -> None:
    # Whatever languages clients send, CareCloud answers in its own (cs, en): 30 distinct
    # Accept-Language values make one table per language it serves, kept within the memo's
    # bytes with the answers they were read from.
    adapter = make(stack=True, group_cache_ttl_seconds=300)
    adapter.client.memo = ByteBoundedLRU(4 * 2**20)
    languages = [f"x-lang-{i}" for i in range(28)] + ["en-GB", "cs;q=0.9, en;q=0.8"]
    for language in languages:
        await adapter.group_table(RequestScope(language=language))
        assert 0 < adapter.client.memo.bytes <= 4 * 2**20
    assert len(cc.log) == 2  # one table read per language CareCloud serves
    tables = [key for key in adapter.client.memo.keys() if key[0] == "table"]  # noqa: SIM118
    # (the last part: the credential's fingerprint, "" for the configured token)
    assert sorted(tables) == [("table", "carecloud", "cs", ""), ("table", "carecloud", "en", "")]


async def test_unauthorized(make: Factory, cc: RunningEmulator) -> None:
    with pytest.raises(UpstreamUnauthorized) as caught:
        await make(token="wrong-token").list_groups(GroupFilter(), Window(0, 5), RequestScope())
    _assert_clean(caught.value, cc, "wrong-token")


@pytest.mark.parametrize(("fault", "error"), [
    ({"status": 503}, UpstreamUnavailable),
    ({"malformed": True}, UpstreamBadResponse),
])
async def test_upstream_faults(make: Factory, cc: RunningEmulator, fault: dict[str, Any],
                               error: type[UpstreamError]) -> None:
    cc.faults.set(**fault)
    with pytest.raises(error) as caught:
        await make().list_groups(GroupFilter(), Window(0, 5), RequestScope())
    _assert_clean(caught.value, cc, cc.token)


@pytest.mark.parametrize("body", [
    {"product_groups": []},
    {"data": {"product_groups": [], "total_items": "3"}},
    {"data": {"product_groups": {}, "total_items": 0}},
    {"data": {"product_groups": [{"name": "x", "state": 1}], "total_items": 1}},
    {"data": {"product_groups": [{"product_group_id": "1", "state": 7}], "total_items": 1}},
    {"data": {"product_groups": [{"product_group_id": "1", "state": 1,
                                  "last_change": "yesterday"}], "total_items": 1}},
    {"data": {"product_groups": [{"product_group_id": "1", "state": 1, "name": 5}],
              "total_items": 1}},
    {"data": {"product_groups": [{"product_group_id": "", "state": 1}], "total_items": 1}},
    {"data": {"product_groups": [{"product_group_id": "1", "state": 1, "store_id": ""}],
              "total_items": 1}},
    {"data": {"product_groups": [{"product_group_id": "1", "state": 1,
                                  "last_change": "2024-05-01T10:00:00+02:00"}],
              "total_items": 1}},
])
async def test_unexpected_shape(body: Any) -> None:
    config = SourceConfig(name="cc-shape", kind="carecloud", base_url="http://upstream.invalid",
                          token="secret-token")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    client = UpstreamClient(config, auth_headers=CareCloudAdapter.auth_headers("secret-token"),
                            transport=transport)
    try:
        with pytest.raises(UpstreamBadResponse) as caught:
            await CareCloudAdapter(config, client).list_groups(GroupFilter(), Window(0, 5),
                                                               RequestScope())
    finally:
        await client.aclose()
    assert "cc-shape" in caught.value.message and caught.value.source == "cc-shape"
    assert "upstream.invalid" not in caught.value.message


def _assert_clean(error: UpstreamError, cc: RunningEmulator, token: str) -> None:
    assert error.source == "carecloud" and "carecloud" in error.message
    for secret in (cc.url, cc.url.split("//")[1], token, "/product-groups", "offset="):
        assert secret not in error.message
    assert len(cc.log) >= 1



async def test_ids_sent_as_numbers_read_as_their_digits() -> None:
    # The doc types ids as strings; an upstream that sends numbers names the same groups.
    row = {"product_group_id": 7, "state": 1, "name": "Seven", "store_id": 3,
           "parent_product_group_id": 12, "last_change": "2024-05-01 10:00:00"}
    config = SourceConfig(name="cc-numbers", kind="carecloud", base_url="http://upstream.invalid",
                          token="secret-token", timezone="Europe/Prague")
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, json={"data": {"product_groups": [row], "total_items": 1}}))
    client = UpstreamClient(config, auth_headers=CareCloudAdapter.auth_headers("secret-token"),
                            transport=transport)
    try:
        page = await CareCloudAdapter(config, client).list_groups(GroupFilter(), Window(0, 5),
                                                                  RequestScope())
    finally:
        await client.aclose()
    [group] = page.items
    assert (group.upstream_id, group.store_id, group.parent_id) == ("7", "3", "12")
    assert group.updated_at is not None and group.updated_at.isoformat() == (
        "2024-05-01T10:00:00+02:00")
