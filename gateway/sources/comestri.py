"""Comestri: products from ``GET {base}/products`` (seed doc 004); no product groups.

Paging is ``page``/``per_page``. The document names the default (50) but no maximum; this adapter
asks for at most 250 a page — the emulator's documented bound (docs/emulators/comestri.md), large
enough that a GraphQL page (≤ 100) is one request, small enough to stay well inside what a catalogue
API of this style accepts. Should the real upstream cap lower, ``fetch_window`` notices the short
page and re-asks in the observed size, so pages are never silently short.

Pushed down, every filter (Comestri has a parameter for each): ``search`` → ``name`` (part of the
name), ``status`` → ``status``, ``code`` → ``code``, and the time windows ``createdAfter`` /
``createdBefore`` / ``updatedAfter`` / ``updatedBefore`` → ``created_time_from`` / ``_to`` /
``updated_time_from`` / ``_to`` in ISO 8601 UTC with ``Z``, the year always four digits. Comestri
times have whole seconds, so a lower bound is rounded up and an upper bound down to the second:
same matches, no sub-second format for the upstream to misread. What Comestri would refuse is the
client's error before any request (:func:`check_filter`): a ``status`` other than ``active`` or
``inactive`` (doc 004), a time outside years 0001-9999 (no four-digit ISO 8601 form).
``root_products_only=true`` is sent explicitly (the document's default applies only to some
tenants): child SKUs are not products of the catalogue.

Field selection: the response is narrowed to what the GraphQL selection needs.
``response_product_fields`` is ``name``/``status`` as selected (``name`` alone when neither is: the
parameter must name something), and ``response_associated_fields`` is always sent, empty when
nothing associated is selected (without it Comestri adds ``product_class`` and
``attribute_values``): ``product_class`` for ``productClass``, ``attribute_values`` for
``attributes`` or ``description`` (the description is the ``description`` attribute),
``product_categories`` for ``categories``. ``id``, ``code`` and the timestamps always come.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import msgspec

from gateway.config import SourceKind
from gateway.errors import BadUserInput
from gateway.scope import RequestScope
from gateway.shared import gather
from gateway.sources.base import ProductKey, ReadCost, SourceAdapter
from gateway.sources.query import ALL_PRODUCT_FIELDS, ProductFields, ProductFilter
from gateway.sources.records import Attribute, Capability, ProductClass, ProductRecord
from gateway.sources.shape import as_utc
from gateway.upstream.client import Params, Parse
from gateway.upstream.paging import Slice, fetch_window, read_all
from gateway.window import Page, Window

__all__ = ["ComestriAdapter"]

PATH = "/products"
MAX_PER_PAGE = 250  # the document gives none; see the module docstring
DESCRIPTION_CODE = "description"
STATUSES = ("active", "inactive")  # "Must be one of: active, inactive." (doc 004)
# Times Comestri is sent: ISO 8601 with a four-digit year, in UTC (the doc: 2016-05-30T05:13:26Z).
TIME_RANGE = (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))


class ComestriAdapter(SourceAdapter):
    kind: ClassVar[SourceKind] = SourceKind.COMESTRI
    capabilities: ClassVar[tuple[Capability, ...]] = (
        Capability.PRODUCTS, Capability.PRODUCT_BY_ID)
    read_cost: ClassVar[ReadCost] = ReadCost(list_page=MAX_PER_PAGE)  # products only

    def check_product_filter(self, product_filter: ProductFilter) -> None:
        check_filter(self.name, product_filter)

    async def list_products(self, product_filter: ProductFilter, window: Window,
                            fields: ProductFields, scope: RequestScope) -> Page[ProductRecord]:
        params = {**filter_params(product_filter), **field_params(fields),
                  "root_products_only": "true"}

        async def fetch(piece: Slice) -> Page[ProductRecord]:
            chunk: Page[ProductRecord] = await self.client.get_json(
                PATH, {**params, "page": piece.page, "per_page": piece.size}, scope=scope,
                parse=Parse(self._chunk, raw=True))
            return chunk

        chunk = await fetch_window(window, fetch, max_size=MAX_PER_PAGE, page_aligned=True)
        return Page(chunk.items, chunk.total)

    async def products_changed_since(self, since: datetime, scope: RequestScope
                                     ) -> list[ProductRecord]:
        # updated_time_from is to the second: a second earlier reads ``since``'s own again.
        changed = ProductFilter(updated_after=since - timedelta(seconds=1))
        return await self._whole(changed, scope)

    async def product_listing(self, scope: RequestScope) -> list[ProductRecord]:
        return await self._whole(ProductFilter(), scope)

    async def _whole(self, product_filter: ProductFilter, scope: RequestScope
                     ) -> list[ProductRecord]:
        return await read_all(lambda window: self.list_products(product_filter, window,
                                                                ALL_PRODUCT_FIELDS, scope),
                              MAX_PER_PAGE,
                              check_total=lambda total: self.within_scan_limit(total, "products"),
                              exact=scope.refresh)

    async def products_by_keys(self, keys: Sequence[ProductKey], fields: ProductFields,
                               scope: RequestScope) -> dict[ProductKey, ProductRecord]:
        # Comestri ids are integers: another id names nothing, and costs no request.
        wanted = [key for key in dict.fromkeys(keys) if key[0].isascii() and key[0].isdigit()]
        found = await gather(*(self._by_id(key[0], fields, scope) for key in wanted))
        return {key: record for key, record in zip(wanted, found, strict=True)
                if record is not None}

    async def _by_id(self, product_id: str, fields: ProductFields, scope: RequestScope
                     ) -> ProductRecord | None:
        params: Params = {**field_params(fields), "id": product_id, "per_page": 1}
        chunk: Page[ProductRecord] = await self.client.get_json(
            PATH, params, scope=scope, parse=Parse(self._chunk, raw=True))
        # Trust only an entry with the asked id (an upstream ignoring ``id`` would answer others).
        return next((p for p in chunk.items if p.upstream_id == product_id), None)

    def _chunk(self, body: bytes) -> Page[ProductRecord]:
        answer = self.decode(PRODUCT_LIST, body)
        # per_page: what the upstream applied.
        return Page([self._record(row) for row in answer.entries], answer.total_entries,
                    answer.per_page)

    def _record(self, row: _Product) -> ProductRecord:
        attributes = [Attribute(a.attribute_definition_code, _text(a.data))
                      for a in row.attribute_values or ()]
        product_class = row.product_class
        return ProductRecord(
            source=self.info,
            upstream_id=str(row.id),
            sku=row.code,
            name=row.name,
            status=row.status,
            description=next((a.value for a in attributes if a.code == DESCRIPTION_CODE), None),
            categories=[c.name for c in row.product_categories or ()],
            product_class=None if product_class is None else ProductClass(
                str(product_class.id), product_class.name),
            attributes=attributes,
            created_at=as_utc(row.created_at),
            updated_at=as_utc(row.updated_at),
        )


def field_params(fields: ProductFields) -> dict[str, str]:
    """``response_product_fields`` and ``response_associated_fields`` for a selection."""
    product = [name for name in ("name", "status") if name in fields] or ["name"]
    associated = []
    if "productClass" in fields:
        associated.append("product_class")
    if "attributes" in fields or "description" in fields:
        associated.append("attribute_values")
    if "categories" in fields:
        associated.append("product_categories")
    return {"response_product_fields": ",".join(product),
            "response_associated_fields": ",".join(associated)}


def filter_params(product_filter: ProductFilter) -> dict[str, str]:
    """The filter as Comestri parameters (all of it can be pushed down)."""
    values = {
        "name": product_filter.search,
        "status": product_filter.status,
        "code": product_filter.code,
        "created_time_from": _instant(product_filter.created_after, up=True),
        "created_time_to": _instant(product_filter.created_before, up=False),
        "updated_time_from": _instant(product_filter.updated_after, up=True),
        "updated_time_to": _instant(product_filter.updated_before, up=False),
    }
    return {name: value for name, value in values.items() if value is not None}


def _instant(moment: datetime | None, *, up: bool) -> str | None:
    """ISO 8601 UTC with ``Z`` to the second, rounded ``up`` or down (a naive time is UTC), the
    year always four digits; ``moment`` is within :data:`TIME_RANGE` (:func:`check_filter`)."""
    if moment is None:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    whole = moment.replace(microsecond=0)
    if up and whole != moment:
        whole += timedelta(seconds=1)
    # isoformat pads the year (strftime's %Y does not, below 1000: "843-01-01").
    return whole.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def check_filter(source: str, product_filter: ProductFilter) -> None:
    """Refuse, naming the argument, a filter value Comestri would refuse or cannot be sent."""
    status = product_filter.status
    if status is not None and status not in STATUSES:
        raise BadUserInput(f"`filter.status` must be one of {', '.join(STATUSES)} for source "
                           f"'{source}'", source=source)
    low, high = TIME_RANGE
    for argument, moment in (("createdAfter", product_filter.created_after),
                             ("createdBefore", product_filter.created_before),
                             ("updatedAfter", product_filter.updated_after),
                             ("updatedBefore", product_filter.updated_before)):
        utc = None if moment is None or moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        if moment is not None and not low <= (utc or moment) <= high:
            raise BadUserInput(f"`filter.{argument}` must be between {_instant(low, up=False)} "
                               f"and {_instant(high, up=False)} for source '{source}'",
                               source=source)


def _text(data: Any) -> str | None:
    """An attribute's value: a string as it is, anything else as its JSON."""
    return data if data is None or isinstance(data, str) else json.dumps(data)


# Comestri's JSON (seed doc 004), decoded by msgspec: types are checked in C, unknown fields are
# skipped, and times are read as ISO 8601 (the doc's "2016-05-30T05:13:26Z").


class _Named(msgspec.Struct, gc=False):
    name: str


class _ProductClass(msgspec.Struct, gc=False):
    id: int
    name: str | None = None


class _AttributeValue(msgspec.Struct, gc=False):
    attribute_definition_code: str
    data: Any = None


class _Product(msgspec.Struct, gc=False):
    id: int
    code: str | None = None
    name: str | None = None
    status: str | None = None
    attribute_values: list[_AttributeValue] | None = None
    product_categories: list[_Named] | None = None
    product_class: _ProductClass | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class _ProductList(msgspec.Struct, gc=False):
    entries: list[_Product]
    total_entries: int
    per_page: int | None = None


PRODUCT_LIST = msgspec.json.Decoder(_ProductList)
