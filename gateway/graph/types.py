"""GraphQL types of the schema contract.

Object types are served straight from the adapters' records (:mod:`gateway.sources.records`):
each type's ``is_type_of`` accepts its record class, scalar fields read record attributes with the
default resolver, and only fields that need another upstream call (``parent``, ``products``) have
resolvers. No per-item GraphQL object is built.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.federation.schema_directives import Key, ListSize
from strawberry.federation.types import FieldSet
from strawberry.relay import PageInfo
from strawberry.types import Info

from gateway.config import SourceKind
from gateway.graph.context import GatewayContext
from gateway.graph.cursors import MAX_PAGE_SIZE
from gateway.graph.listing import Listing
from gateway.ids import decode_id
from gateway.sources import query, records
from gateway.sources.query import Direction, OrderField
from gateway.sources.records import Capability, GroupStatus

__all__ = [
    "Connection",
    "Edge",
    "Node",
    "Product",
    "ProductConnection",
    "ProductFilter",
    "ProductGroup",
    "ProductGroupConnection",
    "ProductGroupFilter",
    "ProductGroupOrder",
    "Source",
]

# The records' own enums are the GraphQL enums (registered in place, no translation per item).
strawberry.enum(SourceKind, description="The kind of upstream API a source is an instance of.")
strawberry.enum(GroupStatus)
strawberry.enum(Capability, name="SourceCapability", description="What a source can answer.")
strawberry.enum(Direction, name="OrderDirection")
strawberry.enum(OrderField, name="ProductGroupOrderField")


async def _entity(info: Info[GatewayContext, None], id: str, record_class: type) -> Any:
    key = decode_id(id)
    if key is None:
        return None
    record = await info.context.catalogue.node(key)
    return record if isinstance(record, record_class) else None


# Demand control (a router's cost analysis): each connection's size comes from first/last,
# at most MAX_PAGE_SIZE; neither argument is required (the default page is 20).
LIST_SIZE = ListSize(assumed_size=MAX_PAGE_SIZE, slicing_arguments=["first", "last"],
                     sized_fields=["edges", "nodes"], require_one_slicing_argument=False)


T = TypeVar("T")


def _is(record_class: type) -> Any:
    """An ``is_type_of`` that accepts the record class a type is served from."""
    return classmethod(lambda cls, obj, info: isinstance(obj, record_class))


@strawberry.interface(description="An object with a global id, refetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type(description="One configured upstream catalogue.")
class Source:
    id: strawberry.ID = strawberry.field(
        description="The source's configured name: its identity in ids, errors and metrics.")
    kind: SourceKind
    capabilities: list[Capability]

    is_type_of = _is(records.SourceInfo)


@strawberry.type(description="A product group of one source.",
                 directives=[Key(fields=FieldSet("id"), resolvable=True)])
class ProductGroup(Node):
    source: Source
    upstream_id: str = strawberry.field(description="The group's id in its source.")
    name: str | None
    code: str | None
    external_id: str | None
    status: GroupStatus
    store_id: str | None
    restrict_access: bool | None
    created_at: datetime | None
    updated_at: datetime | None
    product_count: int | None = strawberry.field(
        description="Products in the group, when the source says without another call.")

    is_type_of = _is(records.GroupRecord)

    @classmethod
    async def resolve_reference(cls, info: Info[GatewayContext, None], id: strawberry.ID
                                ) -> ProductGroup | None:
        """Federation: entities resolve through the same loaders, so N references batch."""
        group: ProductGroup | None = await _entity(info, id, records.GroupRecord)
        return group

    @strawberry.field(description="The parent group (null for a root, or when its source fails).")
    async def parent(self, info: Info[GatewayContext, None]) -> ProductGroup | None:
        group: records.GroupRecord = self  # type: ignore[assignment]
        return await info.context.catalogue.parent(group)  # type: ignore[return-value]

    @strawberry.field(description="The group's products, paginated on their own "
                                  "(null with an error when the source fails).",
                      directives=[LIST_SIZE])
    async def products(self, info: Info[GatewayContext, None], first: int | None = None,
                       after: str | None = None, last: int | None = None,
                       before: str | None = None, search: str | None = None
                       ) -> ProductConnection | None:
        group: records.GroupRecord = self  # type: ignore[assignment]
        from gateway.graph.resolvers import group_products  # resolvers import these types

        return await group_products(info, group, first, after, last, before, search)


@strawberry.type(name="ProductVariantOption")
class VariantOption:
    name: str | None
    label: str | None
    value: str | None

    is_type_of = _is(records.VariantOption)


@strawberry.type(name="ProductInventory")
class Inventory:
    stock: int | None
    min_stock: int | None

    is_type_of = _is(records.Inventory)


@strawberry.type(name="ProductVariant")
class Variant:
    upstream_id: str
    sku: str | None
    name: str | None
    price: float | None
    cost: float | None
    sale_price: float | None
    is_active: bool | None
    options: list[VariantOption]
    inventory: Inventory | None

    is_type_of = _is(records.Variant)


@strawberry.type
class ProductClass:
    upstream_id: str
    name: str | None

    is_type_of = _is(records.ProductClass)


@strawberry.type(name="ProductAttribute")
class Attribute:
    code: str
    value: str | None

    is_type_of = _is(records.Attribute)


@strawberry.type(description="A product of one source.",
                 directives=[Key(fields=FieldSet("id"), resolvable=True)])
class Product(Node):
    source: Source
    upstream_id: str = strawberry.field(description="The product's id in its source.")
    name: str | None
    sku: str | None = strawberry.field(description="Axim: sku; Comestri: code.")
    price: float | None
    status: str | None
    description: str | None
    categories: list[str]
    variants: list[Variant]
    product_class: ProductClass | None
    attributes: list[Attribute]
    created_at: datetime | None
    updated_at: datetime | None

    is_type_of = _is(records.ProductRecord)

    @classmethod
    async def resolve_reference(cls, info: Info[GatewayContext, None], id: strawberry.ID
                                ) -> Product | None:
        product: Product | None = await _entity(info, id, records.ProductRecord)
        return product


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of a list; edges and cursors are built only when selected.")
class Connection(Generic[T]):
    listing: strawberry.Private[Listing[Any]]
    # Plain attributes where cheap (no resolver call per field), resolvers where work is saved.
    nodes: list[T]
    total_count: int | None = strawberry.field(
        description="Items in the whole list; null when a source failed and it is unknown.")

    @classmethod
    def of(cls, listing: Listing[Any]) -> Any:
        return cls(listing=listing, nodes=[item for item, _ in listing.edges],
                   total_count=listing.total)

    @strawberry.field
    def edges(self) -> list[Edge[T]]:
        return [Edge(cursor=cursor.encode(), node=item) for item, cursor in self.listing.edges]

    @strawberry.field
    def page_info(self) -> PageInfo:
        edges = self.listing.edges
        return PageInfo(
            has_next_page=self.listing.has_next, has_previous_page=self.listing.has_previous,
            start_cursor=edges[0][1].encode() if edges else None,
            end_cursor=edges[-1][1].encode() if edges else None)


# The names the schema contract uses: ProductGroupConnection, ProductConnection (and …Edge).
ProductGroupConnection = Connection[ProductGroup]
ProductConnection = Connection[Product]


@strawberry.input
class ProductGroupFilter:
    sources: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Source ids to list (default: every source with groups).")
    search: str | None = strawberry.field(default=None,
                                          description="Part of the name, any case.")
    status: GroupStatus | None = None
    store_id: str | None = None
    code: str | None = None
    external_id: str | None = None

    def to_query(self) -> query.GroupFilter:
        return query.GroupFilter(search=self.search, status=self.status, store_id=self.store_id,
                                 code=self.code, external_id=self.external_id)


@strawberry.input
class ProductGroupOrder:
    field: OrderField
    direction: Direction = Direction.ASC

    def to_query(self) -> query.GroupOrder:
        return query.GroupOrder(self.field, self.direction)


@strawberry.input
class ProductFilter:
    sources: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Source ids to list (default: every source with products).")
    search: str | None = None
    status: str | None = None
    code: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None

    def to_query(self) -> query.ProductFilter:
        return query.ProductFilter(
            search=self.search, status=self.status, code=self.code,
            created_after=self.created_after, created_before=self.created_before,
            updated_after=self.updated_after, updated_before=self.updated_before)

