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
from typing import Any, ClassVar

from gateway.config import SourceKind
from gateway.scope import RequestScope
from gateway.sources.base import ReadCost, SourceAdapter
from gateway.sources.query import GroupFilter
from gateway.sources.records import Capability, GroupRecord, GroupStatus
from gateway.sources.shape import ShapeError, iso_time, required, text
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
                freshness="groups", parse=Parse(self._chunk))
            return chunk

        chunk = await fetch_window(window, fetch, max_size=MAX_LIMIT, page_aligned=True)
        return Page(chunk.items, chunk.total)

    def _chunk(self, body: Any) -> Page[GroupRecord]:
        with self.reading("product group list"):
            rows = required(body, "data", list)
            pagination = required(body, "pagination", dict)
            total = required(pagination, "total", int)
            size = pagination.get("limit")  # the clamped limit the upstream applied
            return Page([self._record(row) for row in rows], total,
                         size if isinstance(size, int) else None)

    def _record(self, row: Any) -> GroupRecord:
        if not isinstance(row, dict):
            raise ShapeError("a product group is not an object")
        status = required(row, "status", int)
        if status not in STATUSES:
            raise ShapeError(f"unknown status {status}")
        return GroupRecord(
            source=self.info,
            upstream_id=_required_text(row, "id"),
            name=text(row, "name"),
            status=STATUSES[status],
            store_id=text(row, "store"),
            created_at=iso_time(row, "createdAt"),
            updated_at=iso_time(row, "updatedAt"),
            parent_id=text(row, "parent"),
        )


def _filter_params(group_filter: GroupFilter) -> Params:
    params: dict[str, str | int] = dict(STABLE_ORDER)
    if group_filter.search is not None:
        params["search"] = group_filter.search
    if group_filter.status is not None:
        params["isActive"] = IS_ACTIVE[group_filter.status]
    return params


def _required_text(row: dict[str, Any], key: str) -> str:
    value = text(row, key)
    if not value:
        raise ShapeError(f"'{key}' is missing")
    return value
