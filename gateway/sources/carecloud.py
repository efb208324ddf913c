"""CareCloud: product groups from ``GET {base}/product-groups`` (seed doc 000, DESIGN.md names).

Paging is ``offset``/``count`` with no documented maximum, so a window is one request (re-asked
from where a short answer stopped, should the upstream clamp after all). Every request names its
order explicitly (``sort_field=product_group_id&sort_direction=asc``) so windows stay stable.

Pushed down: ``search`` → ``name`` (case-insensitive part of the name), ``storeId`` → ``store_id``,
``code`` → ``code``, ``externalId`` → ``external_id``. Not pushed down: ``status`` — CareCloud has
no state parameter and lists deleted groups (``state`` 0) with active ones, so :meth:`unpushable`
names it and the gateway filters over a scan of the group table.

Names come back in the request's language, sent as ``Accept-Language``: the one of the source's
languages (``languages``, default ``cs`` and ``en``: docs/emulators/carecloud.md) the client's
ranges prefer, else the configured ``language``, else ``cs`` (seed doc 000's default
``cs, en-gb;q=0.8``). So every request names one of a few values, and the upstream, the cache and
the group tables see nothing else.
``last_change`` carries no zone; it is read in the source's configured ``timezone``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import SourceConfig, SourceKind
from gateway.languages import lookup, parse_accept_language
from gateway.scope import RequestScope
from gateway.sources.base import ReadCost, SourceAdapter
from gateway.sources.query import GroupFilter
from gateway.sources.records import Capability, GroupRecord, GroupStatus
from gateway.sources.table import GroupTable
from gateway.upstream.client import Parse, UpstreamClient
from gateway.upstream.paging import Slice, fetch_window
from gateway.window import Page, Window

__all__ = ["CareCloudAdapter"]

Item = TypeVar("Item")

PATH = "/product-groups"
STABLE_ORDER = {"sort_field": "product_group_id", "sort_direction": "asc"}
# Newest change first, ties in a stable order (the emulator's; the doc names no tie-break).
CHANGES_ORDER = {"sort_field": "last_change", "sort_direction": "desc"}
# GroupFilter attribute → CareCloud query parameter.
PUSHDOWN = {"search": "name", "store_id": "store_id", "code": "code",
            "external_id": "external_id"}
STATES = {0: GroupStatus.DELETED, 1: GroupStatus.ACTIVE}
# The languages names exist in when the configuration names none (docs/emulators/carecloud.md);
# the first is the upstream's own default (seed doc 000: "cs, en-gb;q=0.8").
LANGUAGES = ("cs", "en")


class CareCloudAdapter(SourceAdapter):
    kind: ClassVar[SourceKind] = SourceKind.CARECLOUD
    capabilities: ClassVar[tuple[Capability, ...]] = (Capability.PRODUCT_GROUPS,)
    # Any offset/count window is one request; every filter but the status is a parameter.
    read_cost: ClassVar[ReadCost] = ReadCost(
        list_page=None, pushed_filters=frozenset({"search", "storeId", "code", "externalId"}),
        parents=True)
    table_page_size: ClassVar[int | None] = None

    def __init__(self, config: SourceConfig, client: UpstreamClient, *,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(config, client, clock=clock)
        self._zone = ZoneInfo(config.timezone)
        self._languages = tuple(tag.lower() for tag in config.languages or LANGUAGES)
        configured = parse_accept_language(config.language) if config.language else ()
        self._default_language = lookup(configured, self._languages, self._languages[0])

    def language(self, scope: RequestScope) -> str:
        return lookup(scope.language_ranges, self._languages, self._default_language)

    async def list_groups(self, group_filter: GroupFilter, window: Window,
                          scope: RequestScope) -> Page[GroupRecord]:
        return await self._list(_filter_params(group_filter), window, scope)

    async def groups_changed_since(self, since: datetime, scope: RequestScope
                                   ) -> list[GroupRecord]:
        # Sorted by last_change (second precision: the second of ``since`` is read again).
        return await self.newest_first(
            lambda window: self._list(dict(CHANGES_ORDER), window, scope), since)

    async def table_rows(self, window: Window, scope: RequestScope) -> Page[_Group]:
        # Rows as decoded (the list call's own answer): a page of a merged list, or a few ids,
        # makes records of only its groups (gateway.sources.table).
        return await self._list(dict(STABLE_ORDER), window, scope, self._rows)

    def table_of(self, rows: list[_Group]) -> GroupTable:
        return GroupTable(rows, build=self._record, row_id=_row_id)

    async def _list(self, params: dict[str, str | int], window: Window, scope: RequestScope,
                    chunk_of: Callable[[bytes], Page[Item]] | None = None) -> Page[Item]:
        language = self.language(scope)
        parse = Parse(chunk_of or self._chunk, raw=True)

        async def fetch(piece: Slice) -> Page[Item]:
            chunk: Page[Item] = await self.client.get_json(
                PATH, {**params, "offset": piece.start, "count": piece.size}, scope=scope,
                language=language, language_header="Accept-Language", freshness="groups",
                parse=parse)
            return chunk

        chunk = await fetch_window(window, fetch, max_size=None, page_aligned=False)
        return Page(chunk.items, chunk.total)

    def _rows(self, body: bytes) -> Page[_Group]:
        answer = self.decode(GROUP_LIST, body).data
        return Page(answer.product_groups, answer.total_items)

    def _chunk(self, body: bytes) -> Page[GroupRecord]:
        rows = self._rows(body)
        return Page([self._record(row) for row in rows.items], rows.total)

    def _record(self, row: _Group) -> GroupRecord:
        # msgspec has checked the state, the ids (not empty) and the zone-less time in C:
        # making a record cannot fail, so a table may make them as they are read.
        store, parent, changed = row.store_id, row.parent_product_group_id, row.last_change
        return GroupRecord(
            source=self.info,
            upstream_id=_row_id(row),
            name=row.name,
            code=row.code,
            external_id=row.external_id,
            status=STATES[row.state],
            store_id=store if store is None or type(store) is str else str(store),
            # The constructor, not replace(tzinfo=): a fifth of its cost (0.17 us against 0.7).
            updated_at=None if changed is None else datetime(
                changed.year, changed.month, changed.day, changed.hour, changed.minute,
                changed.second, changed.microsecond, self._zone),
            parent_id=parent if parent is None or type(parent) is str else str(parent),
            parent_external_id=row.parent_external_id,
        )


# CareCloud's JSON (seed doc 000), decoded by msgspec: types are checked in C and unknown fields
# skipped. Ids are documented as strings (an empty one names nothing); a number is read the same
# way. ``state`` is 0 (deleted) or 1. ``last_change`` is "YYYY-MM-DD HH:MM:SS": a time without a
# zone (one with a zone is refused).

_Id = Annotated[str, msgspec.Meta(min_length=1)] | int
_LocalTime = Annotated[datetime, msgspec.Meta(tz=False)]


class _Group(msgspec.Struct, gc=False):
    product_group_id: _Id
    state: Literal[0, 1]
    name: str | None = None
    parent_product_group_id: _Id | None = None
    parent_external_id: str | None = None
    code: str | None = None
    external_id: str | None = None
    store_id: _Id | None = None
    last_change: _LocalTime | None = None


class _GroupListData(msgspec.Struct, gc=False):
    product_groups: list[_Group]
    total_items: int


class _GroupList(msgspec.Struct, gc=False):
    data: _GroupListData


GROUP_LIST = msgspec.json.Decoder(_GroupList)


def _filter_params(group_filter: GroupFilter) -> dict[str, str | int]:
    params: dict[str, str | int] = dict(STABLE_ORDER)
    for attribute, parameter in PUSHDOWN.items():
        value = getattr(group_filter, attribute)
        if value is not None:
            params[parameter] = value
    return params


def _row_id(row: _Group) -> str:
    group_id = row.product_group_id
    return group_id if type(group_id) is str else str(group_id)
