"""The schema's input types: filters and orders, each turned into the adapters' query terms."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.graph.enums import Direction, GroupStatus, OrderField
from gateway.sources import query

__all__ = ["ProductFilter", "ProductGroupFilter", "ProductGroupOrder"]


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

