"""Axim Commerce: product groups that carry their products (seed docs 002 and 003).

Paths are relative to the configured base URL, which holds any prefix such as ``/open-api/api``
(DESIGN.md, "Axim paths"): ``{base}/productGroup/all`` lists groups, each with one page of its
products; ``{base}/productGroup/{id}`` is one group and a page of its products. Both levels page
with ``page``/``limit`` (products on ``/all``: ``productPage``/``productLimit``), at most 50, so a
window becomes the fewest same-size pages of at most 50
(:func:`~gateway.upstream.paging.fetch_window`). The raw token travels in an ``accessToken`` header.

Pushed down: group ``search`` → ``search`` (part of the group name), product search →
``productSearch`` on ``/all`` and ``search`` on ``/{id}`` (part of the name or SKU).
Not pushed down: ``status``, ``storeId``, ``code`` and ``externalId`` — Axim has no such
parameters (and no store, code or external id at all); :meth:`AximAdapter.unpushable` names the
first one given.

Look-ahead: a list of groups with their first products is one ``/all`` request per group page when
the product window is one (``productPage``, ``productLimit``) pair. A product's id includes the
group it was read from, because Axim reads products only through their group; lookups by id read
that group's whole product list once per request (``scope.group_product_lists``).
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

from gateway.config import SourceKind
from gateway.scope import RequestScope
from gateway.sources.base import GroupsWithProducts, ProductKey, SourceAdapter
from gateway.sources.query import GroupFilter, ProductFields
from gateway.sources.records import (
    Capability,
    GroupRecord,
    GroupStatus,
    Inventory,
    ProductRecord,
    Variant,
    VariantOption,
)
from gateway.sources.shape import ShapeError, iso_time, number, optional, required, strings
from gateway.upstream.client import Params, Parse
from gateway.upstream.paging import Slice, fetch_window, plan_pages, read_all
from gateway.window import Page, Window

__all__ = ["AximAdapter"]

P = ParamSpec("P")
T = TypeVar("T")

ALL_PATH = "/productGroup/all"
MAX_LIMIT = 50  # both levels, both endpoints (docs 002 and 003)
# Axim ids are MongoDB ObjectIds: 24 lowercase hex digits. Anything else cannot name a group.
GROUP_ID = re.compile(r"[0-9a-f]{24}")
# /all always carries products; when they are not wanted, ask for the fewest allowed (one).
NO_PRODUCTS: Params = {"productPage": 1, "productLimit": 1}
# Up to this many ids are fetched one by one (one round trip); more read the group table.
BY_ID_LIMIT = 3


class AximAdapter(SourceAdapter):
    kind: ClassVar[SourceKind] = SourceKind.AXIM
    capabilities: ClassVar[tuple[Capability, ...]] = (
        Capability.PRODUCT_GROUPS, Capability.GROUP_PRODUCTS, Capability.GROUP_BY_ID)
    table_page_size: ClassVar[int | None] = MAX_LIMIT

    @classmethod
    def auth_headers(cls, token: str) -> dict[str, str]:
        return {"accessToken": token}  # the raw token, no "Bearer " prefix

    def unpushable(self, group_filter: GroupFilter) -> str | None:
        return next((a for a in group_filter.active_arguments() if a != "search"), None)

    # -- groups ---------------------------------------------------------------------------------

    async def list_groups(self, group_filter: GroupFilter, window: Window,
                          scope: RequestScope) -> Page[GroupRecord]:
        async def fetch(piece: Slice) -> Page[GroupRecord]:
            chunk: Page[GroupRecord] = await self._all_page(
                group_filter, piece, NO_PRODUCTS, scope, Parse(self._groups_page))
            return chunk

        chunk = await fetch_window(window, fetch, max_size=MAX_LIMIT, page_aligned=True)
        return Page(chunk.items, chunk.total)

    async def list_groups_with_products(
        self, group_filter: GroupFilter, window: Window, product_search: str | None,
        product_window: Window, scope: RequestScope,
    ) -> GroupsWithProducts | None:
        plan = plan_pages(product_window, MAX_LIMIT) or [Slice(0, 1)]
        if len(plan) > 1:
            return None  # not one (productPage, productLimit) pair: per-group loads instead
        piece = plan[0]
        product_params: dict[str, str | int] = {"productPage": piece.page,
                                                "productLimit": piece.size}
        if product_search is not None:
            product_params["productSearch"] = product_search
        keep = slice(product_window.offset - piece.start, product_window.end - piece.start)

        async def fetch(group_piece: Slice) -> Page[tuple[GroupRecord, Page[ProductRecord]]]:
            chunk: Page[tuple[GroupRecord, Page[ProductRecord]]] = await self._all_page(
                group_filter, group_piece, product_params, scope,
                Parse(self._groups_with_products_page, (keep.start, keep.stop)))
            return chunk

        chunk = await fetch_window(window, fetch, max_size=MAX_LIMIT, page_aligned=True)
        groups = [group for group, _ in chunk.items]
        products = {group.upstream_id: page for group, page in chunk.items}
        return Page(groups, chunk.total), products

    async def _all_page(self, group_filter: GroupFilter, piece: Slice,
                        extra: Params, scope: RequestScope, parse: Parse) -> Any:
        params: dict[str, str | int] = {"page": piece.page, "limit": piece.size, **extra}
        if group_filter.search is not None:
            params["search"] = group_filter.search
        # Without products (productLimit 1 is the upstream's minimum) it is a group list.
        freshness = "groups" if extra is NO_PRODUCTS else "products"
        return await self.client.get_json(ALL_PATH, params, scope=scope, freshness=freshness,
                                          parse=parse)

    def _one_group(self, body: Any) -> GroupRecord:
        return self._parse(_group_of_one, body)

    def _products_page(self, body: Any, group_id: str) -> Page[ProductRecord]:
        return self._parse(_products_of_one, body, group_id)

    def _groups_page(self, body: Any) -> Page[GroupRecord]:
        rows, total = self._parse(_list_body, body)
        return Page([self._parse(_group, row) for row in rows], total)

    def _groups_with_products_page(self, body: Any, start: int, stop: int
                                   ) -> Page[tuple[GroupRecord, Page[ProductRecord]]]:
        rows, total = self._parse(_list_body, body)
        keep = slice(start, stop)
        return Page([self._parse(_group_with_products, row, keep) for row in rows], total)

    async def groups_by_ids(self, ids: Sequence[str], scope: RequestScope
                            ) -> dict[str, GroupRecord]:
        wanted = [i for i in dict.fromkeys(ids) if GROUP_ID.fullmatch(i)]
        if len(wanted) > BY_ID_LIMIT:
            # Many ids: the group table (pages of 50, cached apart) costs fewer requests.
            return await super().groups_by_ids(wanted, scope)
        found = await asyncio.gather(*(self._group_by_id(i, scope) for i in wanted))
        return {group.upstream_id: group for group in found if group is not None}

    async def _group_by_id(self, group_id: str, scope: RequestScope) -> GroupRecord | None:
        group: GroupRecord | None = await self.client.get_json(
            f"/productGroup/{group_id}", {"page": 1, "limit": 1}, scope=scope, allow_404=True,
            parse=Parse(self._one_group))
        return group

    # -- products -------------------------------------------------------------------------------

    async def group_products(self, group_id: str, search: str | None, window: Window,
                             scope: RequestScope) -> Page[ProductRecord]:
        if not GROUP_ID.fullmatch(group_id):
            return Page([], 0)
        params: dict[str, str | int] = {} if search is None else {"search": search}

        async def fetch(piece: Slice) -> Page[ProductRecord]:
            chunk: Page[ProductRecord] | None = await self.client.get_json(
                f"/productGroup/{group_id}", {**params, "page": piece.page, "limit": piece.size},
                scope=scope, allow_404=True, parse=Parse(self._products_page, (group_id,)))
            return Page([], 0) if chunk is None else chunk

        chunk = await fetch_window(window, fetch, max_size=MAX_LIMIT, page_aligned=True)
        return Page(chunk.items, chunk.total)

    async def products_by_keys(self, keys: Sequence[ProductKey], fields: ProductFields,
                               scope: RequestScope) -> dict[ProductKey, ProductRecord]:
        by_group: dict[str, set[str]] = defaultdict(set)
        for product_id, group_id in keys:
            if group_id is not None and GROUP_ID.fullmatch(group_id):
                by_group[group_id].add(product_id)
        groups = list(by_group)
        lists = await asyncio.gather(*(self._all_products(g, scope) for g in groups))
        return {(p.upstream_id, group_id): p
                for group_id, products in zip(groups, lists, strict=True)
                for p in products if p.upstream_id in by_group[group_id]}

    async def _all_products(self, group_id: str, scope: RequestScope) -> list[ProductRecord]:
        """Every product of a group, read once per request (concurrent callers share the read)."""
        return await scope.group_product_lists.once(
            (self.name, group_id),
            lambda: read_all(lambda window: self.group_products(group_id, None, window, scope),
                             MAX_LIMIT))

    # -- parsing --------------------------------------------------------------------------------

    def _parse(self, parser: Callable[Concatenate[AximAdapter, P], T], *args: P.args,
               **kwargs: P.kwargs) -> T:
        """Run a parser; a shape it does not expect becomes UpstreamBadResponse."""
        with self.reading("response"):
            return parser(self, *args, **kwargs)


def _list_body(adapter: AximAdapter, body: Any) -> tuple[list[Any], int | None]:
    rows = required(body, "data", list)
    return rows, required(required(body, "pagination", dict), "total", int)


def _group(adapter: AximAdapter, row: Any) -> GroupRecord:
    if not isinstance(row, dict):
        raise ShapeError("a product group is not an object")
    return GroupRecord(
        source=adapter.info,
        upstream_id=required(row, "id", str),
        name=optional(row, "name", str),
        status=(GroupStatus.INACTIVE if optional(row, "status", bool) is False
                else GroupStatus.ACTIVE),
        restrict_access=optional(row, "restrictAccess", bool),
        created_at=iso_time(row, "createdAt"),
        updated_at=iso_time(row, "updatedAt"),
        product_count=optional(row, "productCount", int),
    )


def _group_with_products(adapter: AximAdapter, row: Any, keep: slice
                         ) -> tuple[GroupRecord, Page[ProductRecord]]:
    group = _group(adapter, row)
    rows = required(row, "products", list)
    total = required(required(row, "productPagination", dict), "total", int)
    products = [_product(adapter, p, group.upstream_id) for p in rows[keep]]
    return group, Page(products, total)


def _group_of_one(adapter: AximAdapter, body: Any) -> GroupRecord:
    data = required(body, "data", dict)
    group = _group(adapter, required(data, "productGroup", dict))
    group.product_count = required(required(data, "pagination", dict), "total", int)
    return group


def _products_of_one(adapter: AximAdapter, body: Any, group_id: str) -> Page[ProductRecord]:
    data = required(body, "data", dict)
    rows = required(data, "products", list)
    total = required(required(data, "pagination", dict), "total", int)
    return Page([_product(adapter, row, group_id) for row in rows], total)


def _product(adapter: AximAdapter, row: Any, group_id: str) -> ProductRecord:
    if not isinstance(row, dict):
        raise ShapeError("a product is not an object")
    return ProductRecord(
        source=adapter.info,
        upstream_id=required(row, "id", str),
        group_id=group_id,
        name=optional(row, "name", str),
        sku=optional(row, "sku", str),
        price=number(row, "price"),
        status=optional(row, "status", str),
        description=optional(row, "description", str),
        categories=strings(row, "categories"),
        variants=[_variant(v) for v in optional(row, "variants", list) or []],
        created_at=iso_time(row, "createdAt"),
        updated_at=iso_time(row, "updatedAt"),
    )


def _variant(row: Any) -> Variant:
    if not isinstance(row, dict):
        raise ShapeError("a variant is not an object")
    inventory = optional(row, "inventory", dict)
    return Variant(
        upstream_id=required(row, "id", str),
        sku=optional(row, "sku", str),
        name=optional(row, "name", str),
        price=number(row, "price"),
        cost=number(row, "cost"),
        sale_price=number(row, "sale"),
        is_active=optional(row, "isActive", bool),
        options=[_option(o) for o in optional(row, "options", list) or []],
        inventory=None if inventory is None else Inventory(
            stock=optional(inventory, "stock", int),
            min_stock=optional(inventory, "minStock", int)),
    )


def _option(row: Any) -> VariantOption:
    if not isinstance(row, dict):
        raise ShapeError("a variant option is not an object")
    return VariantOption(name=optional(row, "optionName", str),
                         label=optional(row, "optionValueLabel", str),
                         value=optional(row, "optionValue", str))
