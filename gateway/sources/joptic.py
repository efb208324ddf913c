"""Joptic: product groups from ``GET {base}/product-groups`` (seed doc 001).

Paging is ``page``/``limit`` with ``limit`` clamped to 1..100, so a window becomes the fewest
same-size pages of at most 100 (:func:`~gateway.upstream.paging.fetch_window`). Every request names
the documented default order explicitly (``sortBy=createdAt&sortOrder=desc``).

Pushed down: ``search`` → ``search`` (case-insensitive part of the name) and ``status`` ACTIVE /
INACTIVE → ``isActive=true`` / ``false``. ``status: DELETED`` matches nothing — Joptic has no
deleted groups — so it answers an empty page without a request. Not pushed down: ``storeId``
(``store`` is "returned but not filtered"), ``code`` and ``externalId`` (Joptic has neither);
:meth:`unpushable` names the first one given and the gateway filters over a scan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from operator import attrgetter
from typing import Annotated, ClassVar, Literal, TypeVar

import msgspec

from gateway.config import SourceKind
from gateway.scope import RequestScope
from gateway.sources.base import ReadCost, SourceAdapter
from gateway.sources.query import GroupFilter
from gateway.sources.records import Capability, GroupRecord, GroupStatus
from gateway.sources.shape import as_utc
from gateway.sources.table import GroupTable
from gateway.upstream.client import Params, Parse
from gateway.upstream.paging import Slice, fetch_window
from gateway.window import Page, Window

__all__ = ["JopticAdapter"]

Item = TypeVar("Item")

PATH = "/product-groups"
MAX_LIMIT = 100
STABLE_ORDER = {"sortBy": "createdAt", "sortOrder": "desc"}
CHANGES_ORDER = {"sortBy": "updatedAt", "sortOrder": "desc"}  # newest change first
IS_ACTIVE = {GroupStatus.ACTIVE: "true", GroupStatus.INACTIVE: "false"}
STATUSES = {1: GroupStatus.ACTIVE, 0: GroupStatus.INACTIVE}
# GroupFilter attributes Joptic cannot filter on, with the client's spelling.


class JopticAdapter(SourceAdapter):
    kind: ClassVar[SourceKind] = SourceKind.JOPTIC
    capabilities: ClassVar[tuple[Capability, ...]] = (Capability.PRODUCT_GROUPS,)
    # Pages of at most 100; search and status are parameters, store, code and external id not.
    read_cost: ClassVar[ReadCost] = ReadCost(
        list_page=MAX_LIMIT, pushed_filters=frozenset({"search", "status"}), parents=True)
    table_page_size: ClassVar[int | None] = MAX_LIMIT

    async def list_groups(self, group_filter: GroupFilter, window: Window,
                          scope: RequestScope) -> Page[GroupRecord]:
        if group_filter.status is GroupStatus.DELETED:
            return Page([], 0)
        return await self._list(_filter_params(group_filter), window, scope)

    async def groups_changed_since(self, since: datetime, scope: RequestScope
                                   ) -> list[GroupRecord]:
        return await self.newest_first(
            lambda window: self._list(dict(CHANGES_ORDER), window, scope), since)

    async def table_rows(self, window: Window, scope: RequestScope) -> Page[_Group]:
        # Rows as decoded (the list call's own answer): a page of a merged list, or a few ids,
        # makes records of only its groups (gateway.sources.table).
        return await self._list(dict(STABLE_ORDER), window, scope, self._rows)

    def table_of(self, rows: list[_Group]) -> GroupTable:
        return GroupTable(rows, build=self._record, row_id=attrgetter("id"))

    async def _list(self, params: Params, window: Window, scope: RequestScope,
                    chunk_of: Callable[[bytes], Page[Item]] | None = None) -> Page[Item]:
        parse = Parse(chunk_of or self._chunk, raw=True)

        async def fetch(piece: Slice) -> Page[Item]:
            chunk: Page[Item] = await self.client.get_json(
                PATH, {**params, "page": piece.page, "limit": piece.size}, scope=scope,
                freshness="groups", parse=parse)
            return chunk

        chunk = await fetch_window(window, fetch, max_size=MAX_LIMIT, page_aligned=True)
        return Page(chunk.items, chunk.total)

    def _rows(self, body: bytes) -> Page[_Group]:
        answer = self.decode(GROUP_LIST, body)
        # pagination.limit: the clamped limit the upstream applied.
        return Page(answer.data, answer.pagination.total, answer.pagination.limit)

    def _chunk(self, body: bytes) -> Page[GroupRecord]:
        rows = self._rows(body)
        return Page([self._record(row) for row in rows.items], rows.total, rows.page_size)

    def _record(self, row: _Group) -> GroupRecord:
        # msgspec has checked the status (0 or 1) and the id (not empty) in C.
        return GroupRecord(
            source=self.info,
            upstream_id=row.id,
            name=row.name,
            status=STATUSES[row.status],
            store_id=row.store,
            created_at=as_utc(row.createdAt),
            updated_at=as_utc(row.updatedAt),
            parent_id=row.parent,
        )


# Joptic's JSON (seed doc 001), decoded by msgspec: types are checked in C (a status is 1 or 0,
# an id is not empty), unknown fields are skipped, and times are read as ISO 8601 (one without
# a zone is UTC).


class _Group(msgspec.Struct, gc=False):
    id: Annotated[str, msgspec.Meta(min_length=1)]
    status: Literal[0, 1]
    store: str | None = None
    name: str | None = None
    parent: str | None = None
    createdAt: datetime | None = None
    updatedAt: datetime | None = None


class _Pagination(msgspec.Struct, gc=False):
    total: int
    limit: int | None = None


class _GroupList(msgspec.Struct, gc=False):
    data: list[_Group]
    pagination: _Pagination


GROUP_LIST = msgspec.json.Decoder(_GroupList)


def _filter_params(group_filter: GroupFilter) -> Params:
    params: dict[str, str | int] = dict(STABLE_ORDER)
    if group_filter.search is not None:
        params["search"] = group_filter.search
    if group_filter.status is not None:
        params["isActive"] = IS_ACTIVE[group_filter.status]
    return params
