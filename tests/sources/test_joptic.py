"""JopticAdapter over real HTTP against the Joptic emulator.

Expected values come from the emulator's raw JSON (read with a plain httpx client, 100 per page),
so the adapter's translation is checked against the upstream's own answer, not against itself.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gateway.caches.store import ResponseStore
from gateway.config import SourceConfig
from gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from gateway.scope import RequestScope
from gateway.sources.joptic import JopticAdapter
from gateway.sources.query import GroupFilter
from gateway.sources.records import GroupStatus
from gateway.upstream.client import UpstreamClient
from gateway.upstream.paging import plan_pages
from gateway.upstream.stack import build_transport, health_for
from gateway.window import Window
from tests.clock import ManualClock
from tests.conftest import RunningEmulator

EmulatorGetter = Callable[[str], RunningEmulator]
Factory = Callable[..., JopticAdapter]
Rows = list[dict[str, Any]]
ORDER = {"sortBy": ["createdAt"], "sortOrder": ["desc"]}


@pytest.fixture(scope="module")
def raw(emulator_servers: dict[str, RunningEmulator]) -> Rows:
    """Every group in the default order (createdAt desc, ties by id), straight from the emulator."""
    rows: Rows = []
    with emulator_servers["joptic"].client() as client:
        for page in range(1, 10):
            body = client.get("/product-groups", params={"page": page, "limit": 100}).json()
            rows += body["data"]
            if not body["pagination"]["hasNext"]:
                return rows
    raise AssertionError("the emulator's table is larger than expected")


@pytest.fixture
def jo(emulator: EmulatorGetter) -> RunningEmulator:
    return emulator("joptic")


@pytest.fixture
async def make(jo: RunningEmulator, manual: ManualClock) -> AsyncIterator[Factory]:
    """``make(token=...)``: an adapter on the emulator and the test's clock; clients closed
    after the test."""
    clients: list[UpstreamClient] = []

    def factory(*, stack: bool = False, **overrides: Any) -> JopticAdapter:
        """With ``stack``, the client has the upstream policy stack (and its response cache)."""
        settings: dict[str, Any] = {"name": "joptic", "kind": "joptic", "base_url": jo.url,
                                    "token": jo.token, **overrides}
        config = SourceConfig(**settings)
        transport = build_transport(
            config, store=ResponseStore("memory://", namespace="t", clock=manual.clock),
            health=health_for(config, clock=manual.clock), clock=manual.clock) if stack else None
        client = UpstreamClient(config, auth_headers=JopticAdapter.auth_headers(config.secret()),
                                transport=transport, clock=manual.clock)
        clients.append(client)
        return JopticAdapter(config, client, clock=manual.clock)

    yield factory
    for client in clients:
        await client.aclose()


def _pages(jo: RunningEmulator) -> list[tuple[int, int]]:
    return [(int(r.param("page") or 0), int(r.param("limit") or 0)) for r in jo.log.records]


async def test_window_within_a_page_is_one_request(make: Factory, jo: RunningEmulator,
                                                   raw: Rows) -> None:
    page = await make().list_groups(GroupFilter(), Window(0, 20), RequestScope())
    assert [g.upstream_id for g in page.items] == [r["id"] for r in raw[:20]]
    assert page.total == len(raw)
    [request] = jo.log.records
    assert request.path == "/product-groups"
    assert request.params == {"page": ["1"], "limit": ["20"], **ORDER}
    assert request.headers["authorization"] == f"Bearer {jo.token}"


@pytest.mark.parametrize("window", [
    Window(95, 10), Window(90, 30), Window(0, 100), Window(150, 100), Window(199, 2),
    Window(33, 77), Window(260, 50), Window(400, 10),
])
async def test_windows_across_page_boundaries(make: Factory, jo: RunningEmulator,
                                              window: Window) -> None:
    adapter = make()
    table = await adapter.group_table(RequestScope())
    jo.log.clear()
    page = await adapter.list_groups(GroupFilter(), window, RequestScope())
    assert page.items == table[window.offset:window.end]
    assert page.total == len(table)
    # One round of the fewest pages: the first answers already carry every item there is.
    assert sorted(_pages(jo)) == sorted((s.page, s.size) for s in plan_pages(window, 100))
    assert all(size <= 100 for _, size in _pages(jo))


async def test_records_parse(make: Factory, raw: Rows) -> None:
    table = await make().group_table(RequestScope())
    assert len(table) == len(raw)
    for group, row in zip(table, raw, strict=True):
        assert (group.upstream_id, group.name, group.store_id, group.parent_id) == (
            row["id"], row["name"], row["store"], row["parent"])
        assert group.status is (GroupStatus.ACTIVE if row["status"] == 1 else GroupStatus.INACTIVE)
        assert (group.code, group.external_id, group.parent_external_id) == (None, None, None)
        for moment, text in ((group.created_at, row["createdAt"]),
                             (group.updated_at, row["updatedAt"])):
            if text is None:
                assert moment is None
                continue
            assert moment is not None and moment.utcoffset() == timedelta(0)
            assert moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" == text
    assert {g.status for g in table} == {GroupStatus.ACTIVE, GroupStatus.INACTIVE}
    assert any(g.name is None for g in table) and any(g.updated_at is None for g in table)
    assert any(g.store_id for g in table) and any(g.parent_id for g in table)


@pytest.mark.parametrize(("group_filter", "params"), [
    (GroupFilter(search="PROGRESSIVE"), {"search": ["PROGRESSIVE"]}),
    (GroupFilter(status=GroupStatus.ACTIVE), {"isActive": ["true"]}),
    (GroupFilter(status=GroupStatus.INACTIVE), {"isActive": ["false"]}),
    (GroupFilter(search="1.67", status=GroupStatus.INACTIVE),
     {"search": ["1.67"], "isActive": ["false"]}),
])
async def test_filter_pushdown(make: Factory, jo: RunningEmulator, group_filter: GroupFilter,
                               params: dict[str, list[str]]) -> None:
    adapter = make()
    assert adapter.unpushable(group_filter) is None
    page = await adapter.list_groups(group_filter, Window(0, 100), RequestScope())
    [request] = jo.log.records
    table = await adapter.group_table(RequestScope())
    expected = [g.upstream_id for g in table if group_filter.matches(g)]
    assert expected and [g.upstream_id for g in page.items] == expected[:100]
    assert page.total == len(expected)
    assert request.params == {"page": ["1"], "limit": ["100"], **params, **ORDER}


async def test_deleted_matches_nothing_without_a_request(make: Factory, jo: RunningEmulator
                                                         ) -> None:
    adapter = make()
    group_filter = GroupFilter(search="lens", status=GroupStatus.DELETED)
    assert adapter.unpushable(group_filter) is None
    page = await adapter.list_groups(group_filter, Window(0, 20), RequestScope())
    assert (page.items, page.total) == ([], 0)
    assert len(jo.log) == 0


@pytest.mark.parametrize(("group_filter", "argument"), [
    (GroupFilter(store_id="store-1"), "storeId"),
    (GroupFilter(code="X"), "code"),
    (GroupFilter(external_id="e"), "externalId"),
    (GroupFilter(search="a", status=GroupStatus.ACTIVE, external_id="e", code="X"), "code"),
    (GroupFilter(search="a", status=GroupStatus.INACTIVE), None),
    (GroupFilter(), None),
])
async def test_unpushable(make: Factory, group_filter: GroupFilter, argument: str | None
                          ) -> None:
    assert make().unpushable(group_filter) == argument


async def test_group_table_reads_in_fewest_pages_and_is_memoized(
        make: Factory, jo: RunningEmulator, manual: ManualClock, raw: Rows) -> None:
    adapter, scope = make(stack=True, group_cache_ttl_seconds=300), RequestScope()
    table = await adapter.group_table(scope)
    assert [g.upstream_id for g in table] == [r["id"] for r in raw]
    assert len({g.upstream_id for g in table}) == len(raw)
    assert len(jo.log) == math.ceil(len(raw) / 100)
    assert _pages(jo)[0] == (1, 100) and all(size <= 100 for _, size in _pages(jo))
    assert await adapter.group_table(scope) is table
    found = await adapter.groups_by_ids([raw[150]["id"], raw[3]["id"], "clx-unknown"], scope)
    assert set(found) == {raw[150]["id"], raw[3]["id"]}
    pages = math.ceil(len(raw) / 100)
    assert len(jo.log) == pages  # answered from the memoized table
    manual.advance(299.0)
    assert await adapter.group_table(RequestScope()) is table  # kept for the 300 s group TTL
    assert len(jo.log) == pages
    manual.advance(2.0)
    again = await adapter.group_table(RequestScope())  # past the TTL: read again
    assert again is not table and len(jo.log) == 2 * pages
    assert [g.upstream_id for g in again] == [g.upstream_id for g in table]
    await make(stack=True, group_cache_ttl_seconds=0).group_table(RequestScope())
    assert len(jo.log) == 3 * pages  # without a TTL: read again


async def test_a_table_read_from_calls_made_earlier_is_not_kept_without_a_cache(
        make: Factory, jo: RunningEmulator) -> None:
    """Caches off: a table whose pages the request had already asked for (another field's
    calls, answered once per request) is as fresh as those answers, read now: the next request
    reads the source again, rather than a table kept for ever (fewer calls, old groups)."""
    adapter = make(stack=True, cache_ttl_seconds=0, group_cache_ttl_seconds=0)
    scope = RequestScope()
    first = await adapter.table_rows(Window(0, 100), scope)
    assert first.total is not None
    await adapter.table_rows(Window(100, first.total - 100), scope)
    calls = len(jo.log)
    table = await adapter.group_table(scope)  # every page's call made already
    assert len(jo.log) == calls
    again = await adapter.group_table(RequestScope())
    assert again is not table and len(jo.log) == 2 * calls


async def test_no_language_header(make: Factory, jo: RunningEmulator) -> None:
    await make(language="en").list_groups(GroupFilter(), Window(0, 1), RequestScope())
    assert "accept-language" not in jo.log.records[0].headers


async def test_unauthorized(make: Factory, jo: RunningEmulator) -> None:
    with pytest.raises(UpstreamUnauthorized) as caught:
        await make(token="wrong-token").list_groups(GroupFilter(), Window(0, 5), RequestScope())
    _assert_clean(caught.value, jo, "wrong-token")


@pytest.mark.parametrize(("fault", "error"), [
    ({"status": 503}, UpstreamUnavailable),
    ({"malformed": True}, UpstreamBadResponse),
])
async def test_upstream_faults(make: Factory, jo: RunningEmulator, fault: dict[str, Any],
                               error: type[UpstreamError]) -> None:
    jo.faults.set(**fault)
    with pytest.raises(error) as caught:
        await make().list_groups(GroupFilter(), Window(0, 5), RequestScope())
    _assert_clean(caught.value, jo, jo.token)


GOOD = {"id": "clx1", "status": 1}


@pytest.mark.parametrize("body", [
    {"data": []},
    {"data": {}, "pagination": {"total": 0}},
    {"data": [], "pagination": {"total": None}},
    {"data": [{"status": 1}], "pagination": {"total": 1}},
    {"data": [{**GOOD, "status": 2}], "pagination": {"total": 1}},
    {"data": [{**GOOD, "status": True}], "pagination": {"total": 1}},
    {"data": [{**GOOD, "createdAt": "last week"}], "pagination": {"total": 1}},
    {"data": [{**GOOD, "parent": 17}], "pagination": {"total": 1}},
])
async def test_unexpected_shape(body: Any) -> None:
    with pytest.raises(UpstreamBadResponse) as caught:
        await _answer(body)
    assert "jo-shape" in caught.value.message and caught.value.source == "jo-shape"
    assert "upstream.invalid" not in caught.value.message


async def test_offsets_and_missing_fields_parse() -> None:
    body = {"data": [{**GOOD, "name": None, "createdAt": "2024-03-01T10:00:00+02:00"}],
            "pagination": {"total": 1}}
    [group] = (await _answer(body)).items
    assert group.name is None and group.updated_at is None and group.store_id is None
    assert group.created_at is not None and group.created_at.utcoffset() == timedelta(hours=2)
    assert group.created_at.hour == 10


async def _answer(body: Any) -> Any:
    config = SourceConfig(name="jo-shape", kind="joptic", base_url="http://upstream.invalid",
                          token="secret-token")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    client = UpstreamClient(config, auth_headers=JopticAdapter.auth_headers("secret-token"),
                            transport=transport)
    try:
        return await JopticAdapter(config, client).list_groups(GroupFilter(), Window(0, 5),
                                                               RequestScope())
    finally:
        await client.aclose()


def _assert_clean(error: UpstreamError, jo: RunningEmulator, token: str) -> None:
    assert error.source == "joptic" and "joptic" in error.message
    for secret in (jo.url, jo.url.split("//")[1], token, "/product-groups", "page="):
        assert secret not in error.message
    assert len(jo.log) >= 1
