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

from datetime import UTC, datetime
from typing import Any, ClassVar

from gateway.config import SourceKind
from gateway.errors import UpstreamBadResponse
from gateway.sources.base import SourceAdapter
from gateway.sources.query import GroupFilter
from gateway.sources.records import Capability, GroupRecord, GroupStatus, Page
from gateway.upstream.client import Params, RequestScope
from gateway.upstream.paging import Chunk, Slice, Window, fetch_window

__all__ = ["JopticAdapter"]

PATH = "/product-groups"
MAX_LIMIT = 100
STABLE_ORDER = {"sortBy": "createdAt", "sortOrder": "desc"}
IS_ACTIVE = {GroupStatus.ACTIVE: "true", GroupStatus.INACTIVE: "false"}
STATUSES = {1: GroupStatus.ACTIVE, 0: GroupStatus.INACTIVE}
# GroupFilter attributes Joptic cannot filter on, with the client's spelling.
UNPUSHABLE = {"store_id": "storeId", "code": "code", "external_id": "externalId"}


class _Shape(Exception):
    """The upstream's JSON is not the documented shape (becomes UpstreamBadResponse)."""


class JopticAdapter(SourceAdapter):
    kind: ClassVar[SourceKind] = SourceKind.JOPTIC
    capabilities: ClassVar[tuple[Capability, ...]] = (Capability.PRODUCT_GROUPS,)
    table_page_size: ClassVar[int | None] = MAX_LIMIT

    def unpushable(self, group_filter: GroupFilter) -> str | None:
        return next((name for attribute, name in UNPUSHABLE.items()
                     if getattr(group_filter, attribute) is not None), None)

    async def list_groups(self, group_filter: GroupFilter, window: Window,
                          scope: RequestScope) -> Page[GroupRecord]:
        if group_filter.status is GroupStatus.DELETED:
            return Page([], 0)
        params = _filter_params(group_filter)

        async def fetch(piece: Slice) -> Chunk[GroupRecord]:
            body = await self.client.get_json(
                PATH, {**params, "page": piece.page, "limit": piece.size}, scope=scope,
                freshness="groups")
            return self._chunk(body)

        chunk = await fetch_window(window, fetch, max_size=MAX_LIMIT, page_aligned=True)
        return Page(chunk.items, chunk.total)

    def _chunk(self, body: Any) -> Chunk[GroupRecord]:
        try:
            rows = _field(body, "data", list)
            pagination = _field(body, "pagination", dict)
            total = _field(pagination, "total", int)
            size = pagination.get("limit")  # the clamped limit the upstream applied
            return Chunk([self._record(row) for row in rows], total,
                         size if isinstance(size, int) else None)
        except _Shape as exc:
            raise UpstreamBadResponse(
                f"source '{self.name}' answered an unexpected product group list ({exc})",
                source=self.name) from None

    def _record(self, row: Any) -> GroupRecord:
        if not isinstance(row, dict):
            raise _Shape("a product group is not an object")
        status = _field(row, "status", int)
        if status not in STATUSES:
            raise _Shape(f"unknown status {status}")
        return GroupRecord(
            source=self.info,
            upstream_id=_required_text(row, "id"),
            name=_text(row, "name"),
            status=STATUSES[status],
            store_id=_text(row, "store"),
            created_at=_time(row, "createdAt"),
            updated_at=_time(row, "updatedAt"),
            parent_id=_text(row, "parent"),
        )


def _filter_params(group_filter: GroupFilter) -> Params:
    params: dict[str, str | int] = dict(STABLE_ORDER)
    if group_filter.search is not None:
        params["search"] = group_filter.search
    if group_filter.status is not None:
        params["isActive"] = IS_ACTIVE[group_filter.status]
    return params


def _field(obj: Any, key: str, kind: type[object]) -> Any:
    """``obj[key]``, which must exist and be of type ``kind`` (bool is not an int here)."""
    if not isinstance(obj, dict) or key not in obj:
        raise _Shape(f"'{key}' is missing")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Shape(f"'{key}' is not {kind.__name__}")
    return value


def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is not None and not isinstance(value, str):
        raise _Shape(f"'{key}' is not a string")
    return value


def _required_text(row: dict[str, Any], key: str) -> str:
    value = _text(row, key)
    if not value:
        raise _Shape(f"'{key}' is missing")
    return value


def _time(row: dict[str, Any], key: str) -> datetime | None:
    """An ISO 8601 timestamp with ``Z`` or an offset; one without a zone is read as UTC."""
    value = _text(row, key)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Shape(f"'{key}' is not ISO 8601") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
