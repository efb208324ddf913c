"""GraphQL types of the schema contract.

Object types are served straight from the adapters' records (:mod:`gateway.sources.records`):
each type's ``is_type_of`` accepts its record class, scalar fields read record attributes with the
default resolver, and only fields that need another upstream call (``parent``, ``products``) have
resolvers. No per-item GraphQL object is built.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.federation.schema_directives import Key, ListSize
from strawberry.federation.types import FieldSet
from strawberry.types import Info

from gateway.graph import resolvers
from gateway.graph.connection import LIST_SIZE, Connection
from gateway.graph.context import GatewayContext
from gateway.graph.enums import Capability, GroupStatus, SourceKind
from gateway.ids import decode_id
from gateway.sources import records

__all__ = [
    "Node",
    "Product",
    "ProductConnection",
    "ProductGroup",
    "ProductGroupConnection",
    "Source",
]

def _records(assumed_size: int) -> Any:
    """A list of records inside one upstream answer, declared at ``assumed_size`` items: the
    cost rule prices the answer's size with it (gateway/graph/cost.py), and a router's demand
    control reads it from the subgraph's SDL."""
    return strawberry.field(directives=[ListSize(
        assumed_size=assumed_size, slicing_arguments=[], sized_fields=[],
        require_one_slicing_argument=False)])


async def _entity(info: Info[GatewayContext, None], id: str, record_class: type) -> Any:
    key = decode_id(id)
    if key is None:
        return None
    record = await info.context.loaders.node(key)
    return record if isinstance(record, record_class) else None


def _is(record_class: type) -> Any:
    """An ``is_type_of`` that accepts the record class a type is served from."""
    return classmethod(lambda cls, obj, info: isinstance(obj, record_class))


@strawberry.interface(description="An object with a global id, refetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type(description="One configured upstream catalogue.")
class Source:
    id: strawberry.ID = strawberry.field(
        description="The source's configured name: its identity in ids and errors.")
    kind: SourceKind
    capabilities: list[Capability] = _records(len(Capability))

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
        return await info.context.loaders.parent(group)  # type: ignore[return-value]

    @strawberry.field(description="The group's products, paginated on their own "
                                  "(null with an error when the source fails).",
                      directives=[LIST_SIZE])
    async def products(self, info: Info[GatewayContext, None], first: int | None = None,
                       after: str | None = None, last: int | None = None,
                       before: str | None = None, search: str | None = None
                       ) -> ProductConnection | None:
        group: records.GroupRecord = self  # type: ignore[assignment]
        return await resolvers.group_products(info, group, first, after, last, before, search)


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
    options: list[VariantOption] = _records(5)
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
    categories: list[str] = _records(10)
    variants: list[Variant] = _records(10)
    product_class: ProductClass | None
    attributes: list[Attribute] = _records(20)
    created_at: datetime | None
    updated_at: datetime | None

    is_type_of = _is(records.ProductRecord)

    @classmethod
    async def resolve_reference(cls, info: Info[GatewayContext, None], id: strawberry.ID
                                ) -> Product | None:
        product: Product | None = await _entity(info, id, records.ProductRecord)
        return product


# The names the schema contract uses: ProductGroupConnection, ProductConnection (and …Edge).
ProductGroupConnection = Connection[ProductGroup]
ProductConnection = Connection[Product]
