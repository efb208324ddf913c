"""The root Query and the schema object."""

from __future__ import annotations

from functools import partial

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import ExecutionContext, Info

from gateway.graph import resolvers
from gateway.graph.context import GatewayContext
from gateway.graph.extensions import GatewayErrors
from gateway.graph.types import (
    Node,
    Product,
    ProductConnection,
    ProductFilter,
    ProductGroup,
    ProductGroupConnection,
    ProductGroupFilter,
    ProductGroupOrder,
    Source,
)
from gateway.sources.records import GroupRecord, ProductRecord

__all__ = ["Query", "build_schema", "print_sdl"]

GraphInfo = Info[GatewayContext, None]


@strawberry.type
class Query:
    @strawberry.field(description="The configured sources, in configuration order.")
    def sources(self, info: GraphInfo) -> list[Source]:
        return [adapter.info for adapter in info.context.adapters.values()]  # type: ignore[misc]

    @strawberry.field(description="Any object by its global id; null for an unknown id.")
    async def node(self, info: GraphInfo, id: strawberry.ID) -> Node | None:
        return await resolvers.node(info, id)  # type: ignore[return-value]

    @strawberry.field(description="Objects by global id (at most 100), in the order asked.")
    async def nodes(self, info: GraphInfo, ids: list[strawberry.ID]) -> list[Node | None]:
        return await resolvers.nodes(info, list(ids))  # type: ignore[return-value]

    @strawberry.field(description="Product groups of every source (or those in filter.sources).")
    async def product_groups(
        self, info: GraphInfo, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: ProductGroupFilter | None = None, order_by: ProductGroupOrder | None = None,
    ) -> ProductGroupConnection:
        return await resolvers.product_groups(info, first, after, last, before, filter, order_by)

    @strawberry.field(description="One product group by global id.")
    async def product_group(self, info: GraphInfo, id: strawberry.ID) -> ProductGroup | None:
        record = await resolvers.node(info, id)
        return record if isinstance(record, GroupRecord) else None  # type: ignore[return-value]

    @strawberry.field(description="Products of every source that lists products.")
    async def products(
        self, info: GraphInfo, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None, filter: ProductFilter | None = None,
    ) -> ProductConnection:
        return await resolvers.products(info, first, after, last, before, filter)

    @strawberry.field(description="One product by global id.")
    async def product(self, info: GraphInfo, id: strawberry.ID) -> Product | None:
        record = await resolvers.node(info, id)
        return record if isinstance(record, ProductRecord) else None  # type: ignore[return-value]


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        """Client errors are not the server's to log; GatewayErrors logs the unexpected ones."""


def build_schema() -> strawberry.Schema:
    return GatewaySchema(
        query=Query,
        types=[ProductGroup, Product],
        extensions=[GatewayErrors, partial(ParserCache, maxsize=256),
                    partial(ValidationCache, maxsize=256)],
    )


def print_sdl() -> str:
    """The published SDL (``schema/schema.graphql`` is this text)."""
    return build_schema().as_str() + "\n"
