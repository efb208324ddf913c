"""Compiled execution: an :class:`~gateway.graph.plan.OperationPlan` run level by level.

Plain fields are attribute reads written straight into the response (a subtree of nothing but
record attributes in one pass, by its plain reader: :mod:`gateway.graph.plain`); the fields
that do work call the schema's own resolvers (the same functions graphql-core would call,
through the same strawberry wrappers). A resolver's coroutine is started at once
(:mod:`gateway.graph.eager`): one that ends without waiting is completed on the spot, the
others are awaited together, level by level, so loaders batch as they do on the standard
executor. Values are completed by their fields' shapes (:mod:`gateway.graph.plan`: the spec's
CompleteValue, one ``complete`` per kind of type). Semantics follow graphql-core's:

* a field error is located (message, path, nodes) and the field is null; when the field is
  non-null, the null moves to the nearest nullable position above it;
* errors raised under a position already nulled are not reported (graphql-core cancels that
  work; here it finishes and is ignored);
* scalars and enums go through their type's serialiser (values that already are what the type
  sends pass straight through); objects are checked with ``is_type_of``; abstract types resolve
  their runtime type with the type's ``resolve_type``.

The order of ``errors`` may differ from graphql-core's where it depends on timing.

Building an answer is CPU work that holds the event loop, so it is metered (:class:`Budget`):
the JSON bytes built are counted as objects are written (a lower bound of the encoded answer:
its objects' keys and punctuation, and a byte for each value; not what plain reads put in the
lists inside an object). Every ``check_bytes`` the
executor checks that the answer is still within ``max_bytes`` and the request within its
deadline (else the answer stops there: ``data`` null and ``RESPONSE_TOO_LARGE`` or
``GATEWAY_TIMEOUT``), and once it has built for ``slice_seconds`` it gives the event loop a
turn before it completes the next resolver's value: no request holds the others for much longer
than a slice.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import CoroutineType
from typing import Any, TypeGuard

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    located_error,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
)
from graphql.pyutils import Path
from graphql.type.definition import GraphQLResolveInfoHelpers

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ErrorCode
from gateway.graph.eager import EagerStarts
from gateway.graph.plan import (
    ATTRIBUTE,
    TYPENAME,
    DeferredPlan,
    DirectCall,
    FieldPlan,
    ListShape,
    OperationPlan,
    Position,
    SelectionPlan,
    Shape,
    complete_value,
)
from gateway.graph.strawberry_internals import make_info

__all__ = ["Budget", "DeferredWork", "PartResult", "PlanRun", "StreamWork", "execute_plan"]

# Bytes built between two looks at the budget and the clock (0.2 to 5 ms of building: a value
# may be a plain read or an id to encode), and the building a slice holds the event loop for.
CHECK_BYTES = 32_768
SLICE_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class Budget:
    """What building one answer may take: at most ``max_bytes`` of JSON (as counted while
    building), until ``deadline``; a turn of the event loop after ``slice_seconds`` of building
    (both on ``clock.monotonic()``), looked at every ``check_bytes`` built."""

    max_bytes: int | None = None
    deadline: float | None = None
    clock: Clock = SYSTEM_CLOCK
    check_bytes: int = CHECK_BYTES
    slice_seconds: float = SLICE_SECONDS


UNLIMITED = Budget()


async def execute_plan(schema: GraphQLSchema, plan: OperationPlan, variables: VariableValues,
                       *, root_value: Any, context: Any, budget: Budget = UNLIMITED
                       ) -> ExecutionResult:
    """Run ``plan``: the same data and errors graphql-core's ``execute`` would answer (within
    ``budget``: else ``data`` null and the error that stopped it)."""
    run = PlanRun(schema, plan, variables, root_value, context, budget)
    return await run.execute()


class _Stopped(BaseException):
    """The answer is over its budget: building stops (a BaseException, so that no handler of
    a field's failure takes it for one)."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


# (awaitable, shape of its value, where it goes: container and key, the position above, field)
Pending = tuple[Any, Shape, Any, str | int, Position, FieldPlan]
Path_ = tuple[str | int, ...]


@dataclass(slots=True)
class DeferredWork:
    """A deferred fragment met on an object: executed on ``source`` once its part is due."""

    plan: DeferredPlan
    source: Any
    position: Position  # the object's (dead: a null above it, the fragment is not sent)
    path: Path_


@dataclass(slots=True)
class StreamWork:
    """A streamed list's items past its initial count, each completed as ``shape.item``."""

    shape: ListShape
    rest: list[Any]
    start: int  # the index of rest[0] in the list
    position: Position  # the list's
    path: Path_
    field_plan: FieldPlan


@dataclass(slots=True)
class PartResult:
    """A later part's outcome: its data (None: a null reached the part's own root), its errors,
    and the deferred fragments and streams met while building it."""

    data: Any
    errors: list[GraphQLError]
    later: list[DeferredWork | StreamWork]
    built: int = 0  # the bytes of the answer this part built


class PlanRun:
    """One execution of a plan, or of one later part of it (``prefix``: the part's path)."""

    def __init__(self, schema: GraphQLSchema, plan: OperationPlan, variables: VariableValues,
                 root_value: Any, context: Any, budget: Budget, prefix: Path_ = ()) -> None:
        self.prefix = prefix
        # Deferred fragments and streams met (executed only when the answer comes in parts).
        self.later: list[DeferredWork | StreamWork] = []
        self.schema = schema
        self.budget = budget
        self.built = 0  # the JSON bytes of the answer built so far (see the module's docstring)
        self.next_check = budget.check_bytes  # built at which the budget is checked
        self.slice_ends = budget.clock.monotonic() + budget.slice_seconds
        self.turn_due = False  # a slice was built: the event loop's turn comes next
        self.plan = plan
        self.variables = variables
        # Resolvers read the coerced values as a plain dict, as they do on strawberry's path.
        self.resolver_variables = variables.coerced
        self.root_value = root_value
        self.context = context
        self.errors: list[GraphQLError] = []
        self.error_positions: set[tuple[str | int, ...]] = set()
        self.pending: list[Pending] = []
        # Arguments that read variables, coerced and converted once per field of the plan.
        self.argument_values: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] = {}
        self.tracked: list[Any] = []
        self.eager = EagerStarts()  # the resolvers' coroutines started (see start)
        self.helpers = GraphQLResolveInfoHelpers(_gather, self.tracked.extend)

    async def execute(self) -> ExecutionResult:
        holder: dict[str, Any] = {"data": None}
        root = Position(holder, "data", True, None)
        data: dict[str, Any] = {}
        holder["data"] = data
        stopped = await self.settle(lambda: self.fill(self.plan.root, self.root_value, data, root))
        if stopped is not None:
            return ExecutionResult(None, [stopped])
        return ExecutionResult(holder["data"], self.errors or None)

    # -- parts ---------------------------------------------------------------------------------

    def part(self, path: Path_) -> PlanRun:
        """A run for a later part at ``path``: the same plan, request and budget; its bytes
        counted on from what the parts before it built (``built``: see ``Later``)."""
        run = PlanRun(self.schema, self.plan, self.variables, self.root_value, self.context,
                      self.budget, path)
        run.argument_values = self.argument_values
        run.built, run.next_check = self.built, self.next_check
        return run

    async def deferred(self, work: DeferredWork) -> PartResult:
        """A deferred fragment's part: its selection executed on its object."""
        data: dict[str, Any] = {}
        return await self._part(work.path, data, lambda run, root: run.fill(
            work.plan.selection, work.source, data, root))

    async def item(self, work: StreamWork, index: int) -> PartResult:
        """A streamed item's part (its data: ``{index: value}``; None when a null under a
        non-null item type ends the stream)."""
        box: dict[int, Any] = {}
        value, shape = work.rest[index - work.start], work.shape.item

        def begin(run: PlanRun, root: Position) -> None:
            if inspect.isawaitable(value):
                run.start(value, shape, box, index, root, work.field_plan)
            else:
                complete_value(run, shape, value, box, index, root, work.field_plan)

        return await self._part(work.path, box, begin)

    async def _part(self, path: Path_, out: dict[Any, Any],
                    begin: Callable[[PlanRun, Position], None]) -> PartResult:
        """A later part's run: ``begin`` writes into ``out``, under a root a null may reach."""
        run = self.part(path)
        base = run.built
        holder: dict[str, Any] = {"data": out}
        root = Position(holder, "data", True, None)
        stopped = await run.settle(lambda: begin(run, root))
        if stopped is not None:
            return PartResult(None, [stopped], [])
        return PartResult(holder["data"], run.errors, run.later, run.built - base)

    def stream(self, shape: ListShape, rest: list[Any], position: Position,
               field_plan: FieldPlan) -> None:
        """Items of a streamed list past its initial count: delivered in later parts."""
        assert shape.stream is not None
        self.later.append(StreamWork(shape, rest, shape.stream.initial_count, position,
                                     (*self.prefix, *position.path()), field_plan))

    async def settle(self, begin: Callable[[], None]) -> GraphQLError | None:
        """``begin()``, then everything it started, completed; the error that stopped it when
        the answer went over its budget."""
        try:
            begin()
            # What the resolvers started, level by level, each value completed; a turn of the
            # event loop first whenever a slice of the answer was built.
            while self.pending:
                level, self.pending = self.pending, []
                results = await asyncio.gather(*(awaitable for awaitable, *_ in level),
                                               return_exceptions=True)
                for (_, shape, container, key, position, field_plan), result in zip(
                        level, results, strict=True):
                    if position.is_dead():
                        continue
                    if isinstance(result, asyncio.CancelledError):
                        raise result
                    if isinstance(result, BaseException) and not isinstance(result, Exception):
                        raise result
                    if self.turn_due:
                        await self.turn()
                    # An exception is completed as a failure of the field (or list item).
                    complete_value(self, shape, result, container, key, position, field_plan)
        except _Stopped as stopped:
            self.abandon()
            return stopped.error
        if self.tracked:  # work a resolver asked to be settled before the answer
            await asyncio.gather(*(t for t in self.tracked if inspect.isawaitable(t)),
                                 return_exceptions=True)
        return None

    def abandon(self) -> None:
        """Stop what was started and is still to be awaited (the answer will not be built)."""
        for awaitable, *_ in self.pending:
            if isinstance(awaitable, asyncio.Future):
                self.eager.cancel(awaitable)
            elif inspect.iscoroutine(awaitable):
                awaitable.close()
        self.pending = []

    # -- the budget ------------------------------------------------------------------------

    async def turn(self) -> None:
        """The event loop's turn: other requests go on, then the next slice."""
        self.turn_due = False
        await asyncio.sleep(0)
        self.check_deadline()
        self.slice_ends = self.budget.clock.monotonic() + self.budget.slice_seconds

    def count(self, built: int) -> None:
        """``built`` more bytes of the answer were built (see :meth:`counted`)."""
        self.built += built
        if self.built >= self.next_check:
            self.counted()

    def counted(self) -> None:
        """A piece of the answer was built: every ``check_bytes``, the budget is checked, and
        once the slice's time is spent the event loop's turn falls due."""
        built = self.built
        if built >= self.next_check:
            self.next_check = built + self.budget.check_bytes
            max_bytes = self.budget.max_bytes
            if max_bytes is not None and built > max_bytes:
                raise _Stopped(GraphQLError(
                    f"the answer is larger than {max_bytes} bytes ([limits] max_response_bytes)"
                    ": ask for fewer or smaller lists",
                    extensions={"code": ErrorCode.RESPONSE_TOO_LARGE.value,
                                "maxResponseBytes": max_bytes}))
            now = self.check_deadline()
            if now >= self.slice_ends:
                self.turn_due = True

    def check_deadline(self) -> float:
        """The time now, past the deadline: :class:`_Stopped`."""
        now = self.budget.clock.monotonic()
        deadline = self.budget.deadline
        if deadline is not None and now >= deadline:
            raise _Stopped(GraphQLError(
                "the answer was not built within the request's deadline ([server] "
                "request_timeout_seconds): ask for fewer or smaller lists",
                extensions={"code": ErrorCode.GATEWAY_TIMEOUT.value}))
        return now

    # -- objects ---------------------------------------------------------------------------

    def fill(self, selection: SelectionPlan, source: Any, out: dict[str, Any],
             position: Position) -> None:
        """The spec's ExecuteSelectionSet: each field of ``selection`` on ``source``, its
        completed value written into ``out``."""
        self.built += selection.frame
        for field_plan in selection.fields:
            kind = field_plan.kind
            if kind == ATTRIBUTE:
                try:
                    value = getattr(source, field_plan.attribute)
                except Exception as error:
                    self.fail(error, out, field_plan.key, field_plan.nullable, position,
                              field_plan)
                    continue
                leaf = field_plan.leaf
                if leaf is not None and value is not None:  # the common case: straight to it
                    leaf.complete(self, value, out, field_plan.key, field_plan.nullable,
                                  position, field_plan)
                else:
                    complete_value(self, field_plan.shape, value, out, field_plan.key,
                                   position, field_plan)
            elif kind == TYPENAME:
                out[field_plan.key] = selection.type.name
            else:
                self.call(field_plan, source, out, position)
        if selection.deferred:
            path = (*self.prefix, *position.path())
            self.later += [DeferredWork(deferred, source, position, path)
                           for deferred in selection.deferred]
        if self.built >= self.next_check:
            self.counted()

    def call(self, field_plan: FieldPlan, source: Any, out: dict[str, Any],
             position: Position) -> None:
        out[field_plan.key] = None
        definition = field_plan.definition
        assert definition is not None and definition.resolve is not None
        try:
            arguments, python_arguments = self.arguments(field_plan)
            info = self.info(field_plan, position)
            direct = field_plan.direct
            if direct is None:
                result = definition.resolve(source, info, **arguments)
            else:
                result = self.call_direct(direct, source, info, python_arguments)
        except Exception as error:
            self.fail(error, out, field_plan.key, field_plan.nullable, position, field_plan)
            return
        if inspect.isawaitable(result):
            self.start(result, field_plan.shape, out, field_plan.key, position, field_plan)
        else:
            complete_value(self, field_plan.shape, result, out, field_plan.key, position,
                           field_plan)

    def start(self, awaitable: Any, shape: Shape, container: Any, key: str | int,
              position: Position, field_plan: FieldPlan) -> None:
        """Complete what a resolver's ``awaitable`` gives. A coroutine is started at once
        (:mod:`gateway.graph.eager`): one that ends without waiting is completed now (or after
        the event loop's turn, when one is due), one that waits is awaited with the rest of its
        level; other awaitables are awaited with the level."""
        if type(awaitable) is not CoroutineType:
            self.pending.append((awaitable, shape, container, key, position, field_plan))
            return
        ended, outcome = self.eager.start(awaitable)
        if not ended:  # a task that continues it
            self.pending.append((outcome, shape, container, key, position, field_plan))
        elif self.turn_due:
            self.defer(outcome, shape, container, key, position, field_plan)
        else:
            complete_value(self, shape, outcome, container, key, position, field_plan)

    def defer(self, value: Any, shape: Shape, container: Any, key: str | int,
              position: Position, field_plan: FieldPlan) -> None:
        """A resolver's value, ready at once, completed after the event loop's turn (a slice
        of the answer was just built)."""
        ready = asyncio.get_running_loop().create_future()
        ready.set_result(value)
        self.pending.append((ready, shape, container, key, position, field_plan))

    def arguments(self, field_plan: FieldPlan) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A field's arguments, and for a direct call their Python values: literal ones from
        the plan, those that read variables once per request (every item of a list asks the
        same field with the same variables)."""
        if field_plan.arguments is not None:
            return field_plan.arguments, field_plan.python_arguments
        if field_plan.argument_error is not None:
            raise field_plan.argument_error
        known = self.argument_values.get(id(field_plan))
        if known is None:
            definition = field_plan.definition
            assert definition is not None
            arguments = get_argument_values(definition, field_plan.nodes[0], self.variables)
            direct = field_plan.direct
            known = arguments, None if direct is None else direct.convert(arguments)
            self.argument_values[id(field_plan)] = known
        return known

    def call_direct(self, direct: DirectCall, source: Any, info: GraphQLResolveInfo[Any],
                    python_arguments: dict[str, Any] | None) -> Any:
        """The resolver called as strawberry's wrapper calls it (arguments converted to
        Python values, the info, self or root injected where the resolver asks for them)."""
        assert python_arguments is not None
        kwargs = dict(python_arguments)
        if direct.info_name is not None:
            kwargs[direct.info_name] = make_info(direct.info_class, info, direct.field)
        for name in direct.source_names:
            kwargs[name] = source
        if direct.pass_self:
            return direct.resolver(source, **kwargs)
        return direct.resolver(**kwargs)

    def info(self, field_plan: FieldPlan, position: Position) -> GraphQLResolveInfo[Any]:
        path: Path | None = None
        for key in (*self.prefix, *position.path()) if self.prefix else position.path():
            path = Path(path, key, None)
        definition = field_plan.definition
        assert definition is not None
        return GraphQLResolveInfo(
            field_plan.name, field_plan.nodes, definition.type, field_plan.parent_type,
            Path(path, field_plan.key, field_plan.parent_type.name), self.schema,
            self.plan.fragments, self.root_value, self.plan.operation,
            # graphql-core annotates VariableValues; strawberry's own executor passes the dict
            # (with the same ignore): no type of ours can say it.
            self.resolver_variables,  # type: ignore[arg-type]
            self.context, _is_awaitable, None, self.helpers)

    # -- errors ----------------------------------------------------------------------------

    def fail(self, raw: Exception, container: Any, key: str | int, nullable: bool,
             parent: Position, field_plan: FieldPlan) -> None:
        """A field (or list item) failed: null it, or the nearest nullable position above."""
        if parent.is_dead():
            return
        path = [*self.prefix, *parent.path(), key]
        error = located_error(raw, field_plan.nodes, path)
        container[key] = None
        if nullable:
            self.record(error, tuple(path))
            return
        nulled = parent
        while True:
            nulled.dead = True
            if nulled.nullable:
                nulled.container[nulled.key] = None
                break
            assert nulled.parent is not None  # the root position is nullable
            nulled = nulled.parent
        self.record(error, tuple(nulled.path()) if nulled.parent is not None else None)

    def record(self, error: GraphQLError, position: tuple[str | int, ...] | None) -> None:
        """Keep ``error`` unless its position or one above it was nulled by an earlier one."""
        positions = self.error_positions
        if () in positions:
            return
        if position is not None:
            if any(position[:end] in positions for end in range(1, len(position) + 1)):
                return
            positions.add(position)
        else:
            positions.add(())
        self.errors.append(error)


async def _gather(awaitables: Iterable[Any]) -> list[Any]:
    return list(await asyncio.gather(*awaitables))


def _is_awaitable(value: Any) -> TypeGuard[Awaitable[Any]]:
    return inspect.isawaitable(value)

