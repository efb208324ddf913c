"""What the GraphQL layer asks of a source, in words independent of any upstream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from gateway.sources.records import GroupRecord, GroupStatus

__all__ = ["Direction", "GroupFilter", "GroupOrder", "OrderField", "ProductFields", "ProductFilter"]


class OrderField(Enum):
    NAME = "NAME"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"


class Direction(Enum):
    ASC = "ASC"
    DESC = "DESC"


@dataclass(frozen=True, slots=True)
class GroupOrder:
    field: OrderField
    direction: Direction = Direction.ASC


@dataclass(frozen=True, slots=True)
class GroupFilter:
    """Narrows a group list. ``matches`` is the reference semantics that pushdown must equal."""

    search: str | None = None  # case-insensitive part of the name
    status: GroupStatus | None = None
    store_id: str | None = None
    code: str | None = None
    external_id: str | None = None

    def active_arguments(self) -> list[str]:
        """The names of the filter arguments given, as the client spelled them."""
        names = {
            "search": "search",
            "status": "status",
            "store_id": "storeId",
            "code": "code",
            "external_id": "externalId",
        }
        return [names[n] for n in names if getattr(self, n) is not None]

    def matches(self, group: GroupRecord) -> bool:
        if self.search is not None and (
            group.name is None or self.search.casefold() not in group.name.casefold()
        ):
            return False
        return (
            (self.status is None or group.status == self.status)
            and (self.store_id is None or group.store_id == self.store_id)
            and (self.code is None or group.code == self.code)
            and (self.external_id is None or group.external_id == self.external_id)
        )


@dataclass(frozen=True, slots=True)
class ProductFilter:
    search: str | None = None  # part of the name (Axim: also SKU)
    status: str | None = None
    code: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


# The GraphQL Product fields a query selects (camelCase names), so an adapter asks its upstream
# only for what is needed. ``ALL_PRODUCT_FIELDS`` when the selection is unknown.
ProductFields = frozenset[str]
ALL_PRODUCT_FIELDS: ProductFields = frozenset(
    {
        "id",
        "name",
        "sku",
        "price",
        "status",
        "description",
        "categories",
        "variants",
        "productClass",
        "attributes",
        "createdAt",
        "updatedAt",
    }
)
