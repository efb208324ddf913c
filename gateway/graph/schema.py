"""The root Query and the schema object."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import strawberry
import strawberry.federation
from graphql import GraphQLError, GraphQLSchema, experimental_execute_incrementally, print_schema
from graphql.execution.executor import Executor
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.federation.schema_directives import ListSize
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext, Info

from gateway.graph import resolvers
from gateway.graph.compiled import CompiledExecution, PlanCache
from gateway.graph.connection import LIST_SIZE
from gateway.graph.context import GatewayContext
from gateway.graph.cost import CostLimit, CostModel
from gateway.graph.documents import DocumentCache, ParsedDocuments
from gateway.graph.extensions import GatewayErrors, LogBudget
from gateway.graph.incremental import whole_execution
from gateway.graph.inputs import ProductFilter, ProductGroupFilter, ProductGroupOrder
from gateway.graph.strawberry_internals import graphql_schema, replace_graphql_schema
from gateway.graph.subscription import Subscription
from gateway.graph.types import (
    Node,
    Product,
    ProductConnection,
    ProductGroup,
    ProductGroupConnection,
    Source,
)
from gateway.sources.records import GroupRecord, ProductRecord

__all__ = ["Query", "build_schema", "print_sdl"]

GraphInfo = Info[GatewayContext, None]


class PerEventMemoExecution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with a subfield memo per subscription event.

    graphql-core 3.3 copies one executor per event, memo included, and keys the memo by the
    identity of lists made anew for each event: shared, it grows by every event for as long as
    the subscription lasts (measured: ~0.5 MB a second at 250 events a second)."""

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor


@strawberry.type
class Query:
    @strawberry.field(description="The configured sources, in configuration order.")
    def sources(self, info: GraphInfo) -> list[Source]:
        return [adapter.info for adapter in info.context.adapters.values()]  # type: ignore[misc]

    @strawberry.field(description="Any object by its global id; null for an unknown id.")
    async def node(self, info: GraphInfo, id: strawberry.ID) -> Node | None:
        return await resolvers.node(info, id)  # type: ignore[return-value]

    @strawberry.field(
        description="Objects by global id (at most 100), in the order asked.",
        directives=[
            ListSize(
                assumed_size=100,
                slicing_arguments=[],
                sized_fields=[],
                require_one_slicing_argument=False,
            )
        ],
    )
    async def nodes(self, info: GraphInfo, ids: list[strawberry.ID]) -> list[Node | None]:
        return await resolvers.nodes(info, list(ids))

    @strawberry.field(
        description="Product groups of every source (or those in filter.sources).",
        directives=[LIST_SIZE],
    )
    async def product_groups(
        self,
        info: GraphInfo,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: ProductGroupFilter | None = None,
        order_by: ProductGroupOrder | None = None,
    ) -> ProductGroupConnection:
        return await resolvers.product_groups(info, first, after, last, before, filter, order_by)

    @strawberry.field(description="One product group by global id.")
    async def product_group(self, info: GraphInfo, id: strawberry.ID) -> ProductGroup | None:
        record = await resolvers.node(info, id)
        return record if isinstance(record, GroupRecord) else None  # type: ignore[return-value]

    @strawberry.field(
        description="Products of every source that lists products.", directives=[LIST_SIZE]
    )
    async def products(
        self,
        info: GraphInfo,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: ProductFilter | None = None,
    ) -> ProductConnection:
        return await resolvers.products(info, first, after, last, before, filter)

    @strawberry.field(description="One product by global id.")
    async def product(self, info: GraphInfo, id: strawberry.ID) -> Product | None:
        record = await resolvers.node(info, id)
        return record if isinstance(record, ProductRecord) else None  # type: ignore[return-value]


class _QuietErrors:
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Client errors are not the server's to log; GatewayErrors logs the unexpected ones."""

    @staticmethod
    def remove_field_suggestion(error: GraphQLError) -> None:
        """Without field suggestions (StrawberryConfig.disable_field_suggestions), no
        suggestion at all: graphql-core ends every message that suggests names (fields,
        arguments, types, enum values, in validation and in variables) with " Did you mean …?";
        strawberry's own hook cuts it from unknown fields only."""
        message, found, _ = error.message.partition(" Did you mean ")
        if found:
            error.message = message


# graphql-core's executor for a schema with @defer/@stream, wrapped once.
WHOLE_EXECUTION = whole_execution(experimental_execute_incrementally)


class GatewaySchema(_QuietErrors, strawberry.Schema):
    def _get_execute_function(self) -> Callable[..., Any]:
        # The standard path runs the document without @defer/@stream (gateway/graph/
        # incremental.py): strawberry would hand graphql-core's parts back past the extensions.
        return WHOLE_EXECUTION


class FederatedSchema(_QuietErrors, strawberry.federation.Schema):
    pass


FEDERATION_DIRECTIVES = frozenset({"key", "listSize", "cost", "link"})
def _extensions(documents: DocumentCache, plans: PlanCache | None, introspection: bool,
                cost: CostModel | None
                ) -> list[type[SchemaExtension] | Callable[[], SchemaExtension]]:
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        # One log budget per schema: the bound on logged tracebacks holds across requests.
        partial(GatewayErrors, budget=LogBudget()),
        # Parses and validates once per document; validations are kept with the document.
        partial(ParsedDocuments, documents=documents),
    ]
    if cost is not None:
        extensions.append(partial(CostLimit, model=cost))
        documents.check_requests(cost.check_request)
    if not introspection:
        # graphql-core's NoSchemaIntrospectionCustomRule (__typename stays allowed).
        extensions.append(DisableIntrospection)
    if plans is not None:
        extensions.append(partial(CompiledExecution, plans=plans))
    return extensions


def build_schema(*, federation: bool = False, documents: DocumentCache | None = None,
                 plans: PlanCache | None = None, introspection: bool = True,
                 suggestions: bool = True, cost: CostModel | None = None) -> strawberry.Schema:
    """The schema: plain, or an Apollo Federation 2 subgraph (entities ProductGroup, Product).

    ``documents`` is the parse cache the endpoint shares with execution (one parse and one
    validation per document, within the document limits); with ``plans``, known query
    operations run as compiled plans (:mod:`gateway.graph.planner`); with ``cost``, operations
    that may cost more upstream requests than allowed are refused (:mod:`gateway.graph.cost`).
    ``introspection`` and ``suggestions`` ("Did you mean …?" in errors) are off in production.
    """
    extensions = _extensions(DocumentCache() if documents is None else documents, plans,
                             introspection, cost)
    # @defer and @stream: their definitions in the schema, graphql-core's incremental executor
    # on the standard path (gateway/graph/incremental.py answers in parts on the compiled one).
    # Not in the subgraph: a federation router plans @defer itself, over subgraphs without it.
    config = StrawberryConfig(disable_field_suggestions=not suggestions,
                              enable_experimental_incremental_execution=not federation)
    if federation:
        return FederatedSchema(
            query=Query,
            subscription=Subscription,
            types=[ProductGroup, Product],
            extensions=extensions,
            federation_version="2.9",
            config=config,
            execution_context_class=PerEventMemoExecution,
        )
    with warnings.catch_warnings():
        # The types carry @key/@listSize for the subgraph; the plain schema goes without them.
        warnings.filterwarnings("ignore", message="Federation directive found in schema")
        schema = GatewaySchema(query=Query, subscription=Subscription,
                               types=[ProductGroup, Product], extensions=extensions, config=config,
                               execution_context_class=PerEventMemoExecution)
    replace_graphql_schema(schema, _without_federation(graphql_schema(schema)))
    return schema


def _without_federation(schema: GraphQLSchema) -> GraphQLSchema:
    """The same schema without the federation directives' definitions and their scalar."""
    kwargs = schema.to_kwargs()
    kwargs["directives"] = tuple(
        d for d in kwargs["directives"] if d.name not in FEDERATION_DIRECTIVES
    )
    kwargs["types"] = tuple(t for t in kwargs["types"] or () if t.name != "_FieldSet")
    return GraphQLSchema(**kwargs)


def print_sdl(*, federation: bool = False) -> str:
    """The published SDL: ``schema/schema.graphql``, or the subgraph's
    ``schema/schema.federation.graphql``. The plain SDL has no federation directives."""
    schema = build_schema(federation=federation)
    if federation:
        return schema.as_str() + "\n"
    return print_schema(graphql_schema(schema)) + "\n"
