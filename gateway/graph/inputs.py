"""The schema's input types: filters and orders, each turned into the adapters' query terms.

Every string a client sends is at most :data:`MAX_STRING_LENGTH` characters (:func:`bounded`):
a longer one is ``BAD_USER_INPUT`` naming the argument, before any upstream call (far above any
real name, code or search, and small enough for every upstream's query string).
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.errors import BadUserInput
from gateway.graph.enums import Direction, GroupStatus, OrderField
from gateway.sources import query

__all__ = ["MAX_STRING_LENGTH", "ProductFilter", "ProductGroupFilter", "ProductGroupOrder",
           "bounded", "bounded_all"]

MAX_STRING_LENGTH = 256


def bounded(argument: str, value: str | None) -> str | None:
    """``value``, when it is at most :data:`MAX_STRING_LENGTH` characters."""
    if value is not None and len(value) > MAX_STRING_LENGTH:
        raise BadUserInput(f"`{argument}` is longer than {MAX_STRING_LENGTH} characters")
    return value


def bounded_all(argument: str, values: list[strawberry.ID] | None) -> list[strawberry.ID] | None:
    for value in values or ():
        bounded(argument, value)
    return values


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
        bounded_all("filter.sources", self.sources)
        return query.GroupFilter(search=bounded("filter.search", self.search), status=self.status,
                                 store_id=bounded("filter.storeId", self.store_id),
                                 code=bounded("filter.code", self.code),
                                 external_id=bounded("filter.externalId", self.external_id))


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
        bounded_all("filter.sources", self.sources)
        return query.ProductFilter(
            search=bounded("filter.search", self.search),
            status=bounded("filter.status", self.status), code=bounded("filter.code", self.code),
            created_after=self.created_after, created_before=self.created_before,
            updated_after=self.updated_after, updated_before=self.updated_before)

