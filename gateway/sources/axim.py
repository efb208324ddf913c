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

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, cast

import msgspec

from gateway.config import SourceKind
from gateway.scope import RequestScope
from gateway.shared import gather
from gateway.sources.base import (
    GroupsWithProducts,
    ProductKey,
    ReadCost,
    SourceAdapter,
)
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
from gateway.sources.shape import ShapeError, as_utc
from gateway.upstream.client import Params, Parse
from gateway.upstream.paging import Slice, fetch_window, plan_pages, read_all
from gateway.window import Page, Window

__all__ = ["AximAdapter"]

ALL_PATH = "/productGroup/all"
GROUP_ROUTE = "/productGroup/{id}"  # one group's path, as metrics and spans name it
MAX_LIMIT = 50  # both levels, both endpoints (docs 002 and 003)
# Axim ids are MongoDB ObjectIds: 24 lowercase hex digits. Anything else cannot name a group.
GROUP_ID = re.compile(r"[0-9a-f]{24}")
# /all always carries products; when they are not wanted, ask for the fewest allowed (one).
NO_PRODUCTS: Params = {"productPage": 1, "productLimit": 1}
# Up to this many ids are fetched one by one (one round trip); more read the group table. Groups
# whose products are looked up at the same time do not count: their call is made anyway.
BY_ID_LIMIT = 3


class AximAdapter(SourceAdapter):
    kind: ClassVar[SourceKind] = SourceKind.AXIM
    capabilities: ClassVar[tuple[Capability, ...]] = (
        Capability.PRODUCT_GROUPS, Capability.GROUP_PRODUCTS, Capability.GROUP_BY_ID)
    # Pages of 50 at both levels; only `search` is a parameter; three groups by id at most,
    # one call each (more read the table), not counting groups whose products are looked up
    # too: their call is the products' first page.
    read_cost: ClassVar[ReadCost] = ReadCost(
        list_page=MAX_LIMIT, pushed_filters=frozenset({"search"}), by_id_limit=BY_ID_LIMIT,
        by_id_carries_products=True, products_page=MAX_LIMIT)
    table_page_size: ClassVar[int | None] = MAX_LIMIT

    @classmethod
    def auth_headers(cls, token: str) -> dict[str, str]:
        return {"accessToken": token}  # the raw token, no "Bearer " prefix

    # -- groups ---------------------------------------------------------------------------------

    async def list_groups(self, group_filter: GroupFilter, window: Window,
                          scope: RequestScope) -> Page[GroupRecord]:
        async def fetch(piece: Slice) -> Page[GroupRecord]:
            chunk: Page[GroupRecord] = await self._all_page(
                group_filter, piece, NO_PRODUCTS, scope, Parse(self._groups_page, raw=True))
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
                Parse(self._groups_with_products_page, (keep.start, keep.stop), raw=True))
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

    def _one_group(self, body: bytes) -> GroupRecord:
        data = self.decode(GROUP_ALONE, body).data  # its products, if any, are skipped
        with self.reading("product group"):
            group = _group(self, data.productGroup)
        group.product_count = data.pagination.total
        return group

    def _products_page(self, body: bytes, group_id: str) -> Page[ProductRecord]:
        data = self.decode(ONE_GROUP, body).data
        with self.reading("product"):
            products = [_product(self, row, group_id) for row in data.products]
        return Page(products, data.pagination.total)

    def _groups_page(self, body: bytes) -> Page[GroupRecord]:
        answer = self.decode(GROUP_LIST, body)
        with self.reading("product group"):
            return Page([_group(self, row) for row in answer.data], answer.pagination.total)

    def _groups_with_products_page(self, body: bytes, start: int, stop: int
                                   ) -> Page[tuple[GroupRecord, Page[ProductRecord]]]:
        answer = self.decode(GROUPS_WITH_PRODUCTS, body)
        keep = slice(start, stop)
        with self.reading("product group"):
            return Page([self._with_products(row, keep) for row in answer.data],
                        answer.pagination.total)

    def _with_products(self, row: _GroupWithProducts, keep: slice
                       ) -> tuple[GroupRecord, Page[ProductRecord]]:
        if row.productPagination is None:
            raise ShapeError("'productPagination' is missing")
        group = _group(self, row)
        products = [_product(self, p, group.upstream_id) for p in row.products[keep]]
        return group, Page(products, row.productPagination.total)

    async def groups_by_ids(self, ids: Sequence[str], scope: RequestScope
                            ) -> dict[str, GroupRecord]:
        return await self._groups(ids, set(), scope)

    async def lookup_groups(self, ids: Sequence[str], product_keys: Sequence[ProductKey],
                            scope: RequestScope) -> dict[str, GroupRecord]:
        # A group's own call is its first product page when products of it are looked up too
        # (the same request: made once, scope.calls), so those groups cost nothing more.
        product_groups = {g for _, g in product_keys if g is not None and GROUP_ID.fullmatch(g)}
        return await self._groups(ids, product_groups, scope)

    async def _groups(self, ids: Sequence[str], with_products: set[str], scope: RequestScope
                      ) -> dict[str, GroupRecord]:
        wanted = [i for i in dict.fromkeys(ids) if GROUP_ID.fullmatch(i)]
        if (len([i for i in wanted if i not in with_products]) > BY_ID_LIMIT
                or self.table_is_kept(scope)):
            # Many ids: the group table (pages of 50, cached apart) costs fewer requests; a
            # table kept fresh costs none.
            return await super().groups_by_ids(wanted, scope)
        found = await gather(*(self._group_by_id(i, i in with_products, scope)
                                       for i in wanted))
        return {group.upstream_id: group for group in found if group is not None}

    async def _group_by_id(self, group_id: str, with_products: bool, scope: RequestScope
                           ) -> GroupRecord | None:
        # With products: the very call of the group's first product page (_all_products).
        size = MAX_LIMIT if with_products else 1
        group: GroupRecord | None = await self.client.get_json(
            f"/productGroup/{group_id}", {"page": 1, "limit": size}, scope=scope,
            allow_404=True, parse=Parse(self._one_group, raw=True), route=GROUP_ROUTE)
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
                scope=scope, allow_404=True,
                parse=Parse(self._products_page, (group_id,), raw=True), route=GROUP_ROUTE)
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
        lists = await gather(*(self._all_products(g, scope) for g in groups))
        return {(p.upstream_id, group_id): p
                for group_id, products in zip(groups, lists, strict=True)
                for p in products if p.upstream_id in by_group[group_id]}

    async def product_listing(self, scope: RequestScope) -> list[ProductRecord]:
        # Axim cannot say what changed: its lists are compared whole. A page of /all carries 50
        # groups with their first 50 products each; only larger groups are read on, alone.
        async def fetch(window: Window) -> Page[tuple[str, Page[ProductRecord]]]:
            answer = await self.list_groups_with_products(GroupFilter(), window, None,
                                                          Window(0, MAX_LIMIT), scope)
            assert answer is not None  # one product page per group is one call
            groups, products = answer
            return Page([(g.upstream_id, products[g.upstream_id]) for g in groups.items],
                        groups.total)

        rows = await read_all(fetch, MAX_LIMIT, check_total=self.within_scan_limit,
                              exact=scope.refresh)
        lists = await gather(*(
            self._all_products(group_id, scope) if (first.total or 0) > len(first.items)
            else _given(first.items) for group_id, first in rows))
        return [product for products in lists for product in products]

    async def _all_products(self, group_id: str, scope: RequestScope) -> list[ProductRecord]:
        """Every product of a group, read once per request (concurrent callers share the read)."""
        return await scope.group_product_lists.once(
            (self.name, group_id),
            lambda: read_all(lambda window: self.group_products(group_id, None, window, scope),
                             MAX_LIMIT, exact=scope.refresh))

# Axim's JSON (seed docs 002 and 003), decoded by msgspec: types are checked in C, unknown
# fields are skipped, times are read as RFC 3339 (the docs' "2024-08-30T19:43:04.216Z"), and
# variants decode straight into the shared records.


class _Option(VariantOption, kw_only=True, rename={
        "name": "optionName", "label": "optionValueLabel", "value": "optionValue"}):
    name: str | None = None
    label: str | None = None
    value: str | None = None


class _Inventory(Inventory, kw_only=True, rename={"min_stock": "minStock"}):
    min_stock: int | None = None


class _Variant(Variant, kw_only=True, rename={
        "upstream_id": "id", "sale_price": "sale", "is_active": "isActive"}):
    upstream_id: str
    sale_price: float | None = None
    is_active: bool | None = None
    # Axim's names for the same records.
    options: list[_Option] = msgspec.field(default_factory=list)  # type: ignore[assignment]
    inventory: _Inventory | None = None


class _Product(msgspec.Struct, gc=False):
    id: str
    name: str | None = None
    sku: str | None = None
    price: float | None = None
    status: str | None = None
    description: str | None = None
    categories: list[str] | None = None
    variants: list[_Variant] | None = None
    createdAt: datetime | None = None
    updatedAt: datetime | None = None


class _Pagination(msgspec.Struct, gc=False):
    total: int


class _Group(msgspec.Struct, gc=False):
    id: str
    name: str | None = None
    status: bool | None = None
    restrictAccess: bool | None = None
    createdAt: datetime | None = None
    updatedAt: datetime | None = None
    productCount: int | None = None


class _GroupWithProducts(_Group):
    products: list[_Product] = []
    productPagination: _Pagination | None = None


class _GroupList(msgspec.Struct, gc=False):
    data: list[_Group]
    pagination: _Pagination


class _GroupsWithProductsList(msgspec.Struct, gc=False):
    data: list[_GroupWithProducts]
    pagination: _Pagination


class _GroupAloneData(msgspec.Struct, gc=False):
    productGroup: _Group
    pagination: _Pagination


class _GroupAlone(msgspec.Struct, gc=False):
    data: _GroupAloneData


class _OneGroupData(_GroupAloneData):
    products: list[_Product] = []


class _OneGroup(msgspec.Struct, gc=False):
    data: _OneGroupData


GROUP_LIST = msgspec.json.Decoder(_GroupList)
GROUPS_WITH_PRODUCTS = msgspec.json.Decoder(_GroupsWithProductsList)
ONE_GROUP = msgspec.json.Decoder(_OneGroup)
GROUP_ALONE = msgspec.json.Decoder(_GroupAlone)


def _group(adapter: AximAdapter, row: _Group) -> GroupRecord:
    return GroupRecord(
        source=adapter.info,
        upstream_id=row.id,
        name=row.name,
        status=GroupStatus.INACTIVE if row.status is False else GroupStatus.ACTIVE,
        restrict_access=row.restrictAccess,
        created_at=as_utc(row.createdAt),
        updated_at=as_utc(row.updatedAt),
        product_count=row.productCount,
    )


def _product(adapter: AximAdapter, row: _Product, group_id: str) -> ProductRecord:
    return ProductRecord(
        source=adapter.info,
        upstream_id=row.id,
        group_id=group_id,
        name=row.name,
        sku=row.sku,
        price=row.price,
        status=row.status,
        description=row.description,
        categories=row.categories or [],
        # Decoded for this record alone: kept, not copied (a list of the subclass).
        variants=cast(list[Variant], row.variants) if row.variants else [],
        created_at=as_utc(row.createdAt),
        updated_at=as_utc(row.updatedAt),
    )



async def _given(products: list[ProductRecord]) -> list[ProductRecord]:
    return products
