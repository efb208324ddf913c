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

from datetime import datetime
from typing import ClassVar

import msgspec

from gateway.config import SourceKind
from gateway.scope import RequestScope
from gateway.sources.base import ReadCost, SourceAdapter
from gateway.sources.query import GroupFilter
from gateway.sources.records import Capability, GroupRecord, GroupStatus
from gateway.sources.shape import ShapeError, as_utc
from gateway.upstream.client import Params, Parse
from gateway.upstream.paging import Slice, fetch_window
from gateway.window import Page, Window

__all__ = ["JopticAdapter"]

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

    async def _list(self, params: Params, window: Window, scope: RequestScope
                    ) -> Page[GroupRecord]:

        async def fetch(piece: Slice) -> Page[GroupRecord]:
            chunk: Page[GroupRecord] = await self.client.get_json(
                PATH, {**params, "page": piece.page, "limit": piece.size}, scope=scope,
                freshness="groups", parse=Parse(self._chunk, raw=True))
            return chunk

        chunk = await fetch_window(window, fetch, max_size=MAX_LIMIT, page_aligned=True)
        return Page(chunk.items, chunk.total)

    def _chunk(self, body: bytes) -> Page[GroupRecord]:
        answer = self.decode(GROUP_LIST, body)
        with self.reading("product group list"):
            # pagination.limit: the clamped limit the upstream applied.
            return Page([self._record(row) for row in answer.data], answer.pagination.total,
                        answer.pagination.limit)

    def _record(self, row: _Group) -> GroupRecord:
        if row.status not in STATUSES:
            raise ShapeError(f"unknown status {row.status}")
        if not row.id:
            raise ShapeError("'id' is missing")
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


# Joptic's JSON (seed doc 001), decoded by msgspec: types are checked in C, unknown fields are
# skipped, and times are read as ISO 8601 (one without a zone is UTC).


class _Group(msgspec.Struct, gc=False):
    id: str
    status: int
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
