"""Plain records the adapters produce and the GraphQL layer serves as they are.

Records are built once per upstream item and never copied: GraphQL fields read their attributes
directly (no per-field resolvers on scalars), and ``id`` is the versioned global id. They are
msgspec Structs: built in C (an uncached query builds a hundred), and left out of the garbage
collector's lists (``gc=False``: they hold no reference cycles). An adapter can decode an
upstream's JSON straight into the variant records (a subclass naming the upstream's fields, as
:mod:`gateway.sources.axim` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import msgspec

from gateway.config import SourceKind
from gateway.ids import NodeKey, NodeType, encode_parts

__all__ = [
    "Attribute",
    "Capability",
    "GroupRecord",
    "GroupStatus",
    "Inventory",
    "ProductClass",
    "ProductRecord",
    "SourceInfo",
    "Variant",
    "VariantOption",
    "identity_only",
    "node_key",
]

class GroupStatus(Enum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    DELETED = "DELETED"


GROUP, PRODUCT = NodeType.PRODUCT_GROUP.value, NodeType.PRODUCT.value  # in an id


class Capability(Enum):
    PRODUCT_GROUPS = "PRODUCT_GROUPS"  # lists groups
    GROUP_PRODUCTS = "GROUP_PRODUCTS"  # groups have products
    PRODUCTS = "PRODUCTS"  # lists products outside groups
    GROUP_BY_ID = "GROUP_BY_ID"  # fetches one group by id without a scan
    PRODUCT_BY_ID = "PRODUCT_BY_ID"  # fetches one product by id without a scan


@dataclass(frozen=True, slots=True)
class SourceInfo:
    id: str  # the configured name
    kind: SourceKind
    capabilities: tuple[Capability, ...]


class GroupRecord(msgspec.Struct, kw_only=True, gc=False):
    source: SourceInfo
    upstream_id: str
    name: str | None = None
    code: str | None = None
    external_id: str | None = None
    status: GroupStatus = GroupStatus.ACTIVE
    store_id: str | None = None
    restrict_access: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    parent_id: str | None = None  # upstream id of the parent
    parent_external_id: str | None = None  # CareCloud may name the parent only this way
    product_count: int | None = None

    @property
    def id(self) -> str:
        return encode_parts(GROUP, self.source.id, self.upstream_id, None)


# Decoded upstream data holds no reference cycles: msgspec keeps these out of the garbage
# collector's lists (gc=False), so a 100-product answer adds nothing for it to scan.
class VariantOption(msgspec.Struct, kw_only=True, gc=False):
    name: str | None = None
    label: str | None = None
    value: str | None = None


class Inventory(msgspec.Struct, kw_only=True, gc=False):
    stock: int | None = None
    min_stock: int | None = None


class Variant(msgspec.Struct, kw_only=True, gc=False):
    upstream_id: str
    sku: str | None = None
    name: str | None = None
    price: float | None = None
    cost: float | None = None
    sale_price: float | None = None
    is_active: bool | None = None
    options: list[VariantOption] = msgspec.field(default_factory=list)
    inventory: Inventory | None = None


@dataclass(frozen=True, slots=True)
class ProductClass:
    upstream_id: str
    name: str | None


@dataclass(frozen=True, slots=True)
class Attribute:
    code: str
    value: str | None


class ProductRecord(msgspec.Struct, kw_only=True, gc=False):
    source: SourceInfo
    upstream_id: str
    group_id: str | None = None  # Axim: the group the product was read from (part of its id)
    name: str | None = None
    sku: str | None = None
    price: float | None = None
    status: str | None = None
    description: str | None = None
    categories: list[str] = msgspec.field(default_factory=list)
    variants: list[Variant] = msgspec.field(default_factory=list)
    product_class: ProductClass | None = None
    attributes: list[Attribute] = msgspec.field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def id(self) -> str:
        return encode_parts(PRODUCT, self.source.id, self.upstream_id, self.group_id)


def node_key(record: GroupRecord | ProductRecord) -> NodeKey:
    """What the record's global id names."""
    if isinstance(record, GroupRecord):
        return NodeKey(NodeType.PRODUCT_GROUP, record.source.id, record.upstream_id)
    return NodeKey(NodeType.PRODUCT, record.source.id, record.upstream_id, record.group_id)


def identity_only(record: GroupRecord | ProductRecord) -> GroupRecord | ProductRecord:
    """The record with nothing but what identifies it (its id, source and upstream id): what a
    tenant is told of an item deleted in its source, whose last state it may never have seen."""
    if isinstance(record, GroupRecord):
        return GroupRecord(source=record.source, upstream_id=record.upstream_id,
                           status=GroupStatus.DELETED)
    return ProductRecord(source=record.source, upstream_id=record.upstream_id,
                         group_id=record.group_id)
