"""Compiled execution wired into the schema: plans kept per document, and the extension that
runs them in place of graphql-core's executor.

:class:`PlanCache` keeps, per parsed document (the :class:`~gateway.graph.documents.DocumentCache`
hands out one object per query text) and operation name, the operation's plans: one per values
of the variables its ``@skip``/``@include`` read. An operation the compiler does not support is
remembered as such and always runs on the standard executor. Given the ``DocumentCache``, it
keeps plans only for the documents that cache keeps, and drops them when the cache drops the
document; a document it does not keep gets its plan built for the request only.

:class:`CompiledExecution` (a schema extension) runs the plan before strawberry would execute;
strawberry then skips its own execution and every other extension (error handling, the stale
report) sees the result as usual.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    get_operation_ast,
)
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from gateway.caches.bounded import ByteBoundedLRU
from gateway.graph.context import GatewayContext
from gateway.graph.documents import DocumentCache
from gateway.graph.executor import UNLIMITED, Budget, PlanRun, execute_plan
from gateway.graph.extensions import public_errors
from gateway.graph.incremental import Later
from gateway.graph.plan import BadDirective, OperationPlan
from gateway.graph.planner import Unsupported, build_plan, directive_variables
from gateway.graph.strawberry_internals import graphql_schema
from gateway.graph.variables import VariableCoercion

__all__ = ["CompiledExecution", "PlanCache"]

DEFAULT_MAX_PLANS = 256
MAX_VARIANTS = 16  # plans per operation (one per values of its directives' variables)


@dataclass
class _Operation:
    document: DocumentNode  # kept so the id() key stays this document's
    operation: OperationDefinitionNode | None  # None: not compiled (unsupported)
    fragments: dict[str, FragmentDefinitionNode]
    directive_variables: tuple[str, ...]
    in_parts: bool  # has @defer or @stream: its plans differ for an answer in parts
    # By (in parts or not, the directives' variables' values).
    # (None: not compiled; an error: the directives' arguments are the client's error.)
    variants: dict[tuple[Any, ...], OperationPlan | GraphQLError | None] = field(
        default_factory=dict)
    coercion: VariableCoercion | None = None  # made on the first run (it needs the schema)


class PlanCache:
    """Plans by document, operation name and directive variables' values; bounded (and, with
    ``documents``, kept only for the documents that cache keeps)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_PLANS, *,
                 documents: DocumentCache | None = None) -> None:
        self.max_entries = max_entries
        self.documents = documents
        # Each plan counts 1: the bound is a count.
        self._operations: ByteBoundedLRU[tuple[int, str | None], _Operation] = ByteBoundedLRU(
            max_entries)
        if documents is not None:
            documents.on_evict(self.forget)
        # Operations run by plan, refused for their variables, and left to the standard executor.
        self.runs = Counter[str]()

    async def execute(self, schema: GraphQLSchema, document: DocumentNode,
                      operation_name: str | None, variables: Mapping[str, Any] | None, *,
                      root_value: Any, context: Any) -> ExecutionResult | None:
        """The operation's result by its plan; None when it is not compiled. When the
        context takes an answer in parts (``context.incremental``), this is the first part,
        and ``context.later`` the rest (:mod:`gateway.graph.incremental`)."""
        incremental = bool(getattr(context, "incremental", False))
        entry = self._entry(document, operation_name)
        if entry.operation is None:
            self.runs["standard"] += 1
            return None
        if entry.coercion is None or entry.coercion.schema is not schema:
            entry.coercion = VariableCoercion(schema, entry.operation)
        coerced = entry.coercion(variables)
        if isinstance(coerced, list):
            self.runs["bad variables"] += 1
            return ExecutionResult(None, coerced)
        incremental = incremental and entry.in_parts
        key = (incremental, *(coerced.coerced.get(name) for name in entry.directive_variables))
        if key not in entry.variants and len(entry.variants) < MAX_VARIANTS:
            entry.variants[key] = self._build(schema, entry, coerced.coerced, incremental)
        plan = entry.variants.get(key)
        if isinstance(plan, GraphQLError):
            self.runs["bad directives"] += 1
            return ExecutionResult(None, [plan])
        if plan is None:
            self.runs["standard"] += 1
            return None
        self.runs["compiled"] += 1
        if not incremental:
            return await execute_plan(schema, plan, coerced, root_value=root_value,
                                      context=context, budget=_budget(context))
        run = PlanRun(schema, plan, coerced, root_value, context, _budget(context))
        result = await run.execute()
        if run.later and result.data is not None:
            later = Later(run, lambda: context.errors, public_errors)
            if later.first:
                context.later = later
        return result

    def __len__(self) -> int:
        return len(self._operations)

    def forget(self, document: DocumentNode) -> None:
        """Drop the plans of ``document`` (the document cache let it go)."""
        for key, entry in self._operations.items():
            if entry.document is document:
                self._operations.pop(key)

    def _entry(self, document: DocumentNode, operation_name: str | None) -> _Operation:
        key = (id(document), operation_name)
        entry = self._operations.get(key)
        if entry is None or entry.document is not document:
            operation = get_operation_ast(document, operation_name)
            fragments = {d.name.value: d for d in document.definitions
                         if isinstance(d, FragmentDefinitionNode)}
            names, in_parts = directive_variables(operation, fragments) if operation else (
                (), False)
            entry = _Operation(document, operation, fragments, names, in_parts)
            if self.documents is None or self.documents.holds(document):
                self._operations.put(key, entry, 1)
        return entry

    @staticmethod
    def _build(schema: GraphQLSchema, entry: _Operation, variables: Mapping[str, Any],
               incremental: bool) -> OperationPlan | GraphQLError | None:
        assert entry.operation is not None
        try:
            return build_plan(schema, entry.operation, entry.fragments, variables,
                              incremental=incremental)
        except Unsupported:
            return None
        except BadDirective as bad:
            return bad.error


def _budget(context: Any) -> Budget:
    """The answer's budget: the request's deadline and longest answer (its scope's)."""
    if not isinstance(context, GatewayContext):
        return UNLIMITED
    scope = context.scope
    return Budget(max_bytes=scope.max_response_bytes, deadline=scope.deadline,
                  clock=scope.clock)


class CompiledExecution(SchemaExtension):
    """Runs a compiled plan where one can be built; otherwise graphql-core executes."""

    def __init__(self, *, plans: PlanCache) -> None:
        self.plans = plans

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # A subscription's events run on graphql-core's subscribe, one execution per event.
        if context.result is None and document is not None and \
                context.operation_type is not OperationType.SUBSCRIPTION:
            result = await self.plans.execute(
                graphql_schema(context.schema), document, context.operation_name,
                context.variables,
                root_value=context.root_value, context=context.context)
            if result is not None:
                context.result = result
        yield
