"""Compiled execution: an :class:`~gateway.graph.plan.OperationPlan` run level by level.

Plain fields are attribute reads written straight into the response (a subtree of nothing but
record attributes in one pass, :func:`_read_plain`); the fields that do work call the schema's
own resolvers (the same functions graphql-core would call, through the same strawberry
wrappers). A resolver's coroutine is started at once: one that ends without waiting is
completed on the spot, the others are awaited together, level by level, so loaders batch as
they do on the standard executor. Semantics follow graphql-core's:

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
import contextlib
import contextvars
import inspect
from collections.abc import Awaitable, Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass
from math import isfinite
from types import CoroutineType
from typing import Any, TypeGuard

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
    located_error,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path, Undefined
from graphql.pyutils import inspect as graphql_inspect
from graphql.type.definition import GraphQLResolveInfoHelpers

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ErrorCode
from gateway.graph.plan import (
    ATTRIBUTE,
    PLAIN_INT,
    PLAIN_LEAF,
    PLAIN_LIST,
    PLAIN_OBJECT,
    PLAIN_TYPENAME,
    TYPENAME,
    AbstractShape,
    DirectCall,
    FieldPlan,
    LeafShape,
    ListShape,
    NonNullShape,
    ObjectShape,
    OperationPlan,
    PlainRead,
    SelectionPlan,
    Shape,
    plain_reads,
)

__all__ = ["Budget", "coerce_variables", "execute_plan"]

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


def coerce_variables(schema: GraphQLSchema, operation: OperationDefinitionNode,
                     raw: Mapping[str, Any] | None) -> VariableValues | list[GraphQLError]:
    """The operation's variables coerced as graphql-core does, or the request errors."""
    return get_variable_values(schema, operation.variable_definitions or (), dict(raw or {}))


async def execute_plan(schema: GraphQLSchema, plan: OperationPlan, variables: VariableValues,
                       *, root_value: Any, context: Any, budget: Budget = UNLIMITED
                       ) -> ExecutionResult:
    """Run ``plan``: the same data and errors graphql-core's ``execute`` would answer (within
    ``budget``: else ``data`` null and the error that stopped it)."""
    run = _Run(schema, plan, variables, root_value, context, budget)
    return await run.execute()


class _Tally:
    """The JSON bytes of the answer built so far (see the module's docstring)."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


class _Stopped(BaseException):
    """The answer is over its budget: building stops (a BaseException, so that no handler of
    a field's failure takes it for one)."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


class _Position:
    """Where a completed object or list sits, so that a null can move up from inside it."""

    __slots__ = ("container", "dead", "key", "nullable", "parent")

    def __init__(self, container: Any, key: str | int, nullable: bool,
                 parent: _Position | None) -> None:
        self.container = container
        self.key = key
        self.nullable = nullable
        self.parent = parent
        self.dead = False

    def path(self) -> list[str | int]:
        keys: list[str | int] = []
        position: _Position | None = self
        while position is not None and position.parent is not None:
            keys.append(position.key)
            position = position.parent
        keys.reverse()
        return keys

    def is_dead(self) -> bool:
        position: _Position | None = self
        while position is not None:
            if position.dead:
                return True
            position = position.parent
        return False


# (awaitable, shape of its value, where it goes: container and key, the position above, field)
Pending = tuple[Any, "Shape | None", Any, str | int, _Position, FieldPlan]


class _Run:
    def __init__(self, schema: GraphQLSchema, plan: OperationPlan, variables: VariableValues,
                 root_value: Any, context: Any, budget: Budget) -> None:
        self.schema = schema
        self.budget = budget
        self.tally = _Tally()
        self.next_check = budget.check_bytes  # tally.bytes at which the budget is checked
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
        self.resumed: dict[asyncio.Task[Any], _Resumed] = {}  # the tasks start() made
        self.helpers = GraphQLResolveInfoHelpers(_gather, self.tracked.extend)

    async def execute(self) -> ExecutionResult:
        holder: dict[str, Any] = {"data": None}
        root = _Position(holder, "data", True, None)
        data: dict[str, Any] = {}
        holder["data"] = data
        try:
            self.fill(self.plan.root, self.root_value, data, root)
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
                    self.complete(shape, result, container, key, position, field_plan)
        except _Stopped as stopped:
            self.abandon()
            return ExecutionResult(None, [stopped.error])
        if self.tracked:  # work a resolver asked to be settled before the answer
            await asyncio.gather(*(t for t in self.tracked if inspect.isawaitable(t)),
                                 return_exceptions=True)
        return ExecutionResult(holder["data"], self.errors or None)

    def abandon(self) -> None:
        """Stop what was started and is still to be awaited (the answer will not be built)."""
        for awaitable, *_ in self.pending:
            if isinstance(awaitable, asyncio.Future):
                resumed = self.resumed.get(awaitable)  # type: ignore[call-overload]
                if resumed is not None:
                    resumed.cancel()
                awaitable.cancel()
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

    def counted(self) -> None:
        """A piece of the answer was built: every ``check_bytes``, the budget is checked, and
        once the slice's time is spent the event loop's turn falls due."""
        built = self.tally.bytes
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
             position: _Position) -> None:
        tally = self.tally
        tally.bytes += selection.frame
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
                if leaf is not None and value is not None:  # the common case, inline
                    if leaf.passthrough is type(value):
                        out[field_plan.key] = value
                    else:
                        self.complete_leaf(leaf, value, out, field_plan.key, field_plan.nullable,
                                           position, field_plan)
                else:
                    self.complete(field_plan.shape, value, out, field_plan.key, position,
                                  field_plan)
            elif kind == TYPENAME:
                out[field_plan.key] = selection.type.name
            else:
                self.call(field_plan, source, out, position)
        if tally.bytes >= self.next_check:
            self.counted()

    def call(self, field_plan: FieldPlan, source: Any, out: dict[str, Any],
             position: _Position) -> None:
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
            self.complete(field_plan.shape, result, out, field_plan.key, position, field_plan)

    def start(self, awaitable: Any, shape: Shape | None, container: Any, key: str | int,
              position: _Position, field_plan: FieldPlan) -> None:
        """Start a resolver's coroutine now, as an eager task would (Python 3.12's, which 3.11
        lacks). One that ends without waiting (a primed loader, an answer in the cache) is
        completed at once: no task, no turn of the event loop; a warm query's twenty
        ``products`` were twenty tasks. One that waits goes on in a task, in the context it
        started in, and is awaited with the rest of its level. Loaders batch as before: every
        load made before the executor next waits is in one batch."""
        if type(awaitable) is not CoroutineType:
            self.pending.append((awaitable, shape, container, key, position, field_plan))
            return
        context = contextvars.copy_context()
        try:
            waiting = context.run(awaitable.send, None)
        except StopIteration as done:
            value = done.value
        except Exception as error:
            value = error
        else:
            value = _WAITING
        if value is not _WAITING:  # it ended without waiting: its value, now or after a turn
            if self.turn_due:
                self.defer(value, shape, container, key, position, field_plan)
            else:
                self.complete(shape, value, container, key, position, field_plan)
            return
        if waiting is not None:
            # The future it waits for is marked as awaited until a task takes it up; another
            # coroutine awaiting the same future (one loader key) meanwhile would be refused.
            waiting._asyncio_future_blocking = False
        resumed = _Resumed(awaitable, waiting)
        task = asyncio.get_running_loop().create_task(resumed.run(), context=context)
        self.resumed[task] = resumed
        self.pending.append((task, shape, container, key, position, field_plan))

    def defer(self, value: Any, shape: Shape | None, container: Any, key: str | int,
              position: _Position, field_plan: FieldPlan) -> None:
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
            kwargs[direct.info_name] = direct.info_class(_raw_info=info, _field=direct.field)
        for name in direct.source_names:
            kwargs[name] = source
        if direct.pass_self:
            return direct.resolver(source, **kwargs)
        return direct.resolver(**kwargs)

    def info(self, field_plan: FieldPlan, position: _Position) -> GraphQLResolveInfo[Any]:
        path: Path | None = None
        for key in position.path():
            path = Path(path, key, None)
        definition = field_plan.definition
        assert definition is not None
        return GraphQLResolveInfo(
            field_plan.name, field_plan.nodes, definition.type, field_plan.parent_type,
            Path(path, field_plan.key, field_plan.parent_type.name), self.schema,
            self.plan.fragments, self.root_value, self.plan.operation,
            self.resolver_variables,  # type: ignore[arg-type]
            self.context, _is_awaitable, None, self.helpers)

    # -- values ----------------------------------------------------------------------------

    def complete(self, shape: Shape | None, value: Any, container: Any, key: str | int,
                 parent: _Position, field_plan: FieldPlan) -> None:
        """Write the completed ``value`` at ``container[key]`` (or null it, with an error)."""
        nullable = True
        if type(shape) is NonNullShape:
            nullable, shape = False, shape.inner
        if value is None:
            if nullable:
                container[key] = None
            else:
                self.fail(GraphQLError(
                    "Cannot return null for non-nullable field"
                    f" {field_plan.parent_type.name}.{field_plan.name}."),
                    container, key, nullable, parent, field_plan)
            return
        if isinstance(value, Exception):
            self.fail(value, container, key, nullable, parent, field_plan)
            return
        kind = type(shape)
        if kind is LeafShape:
            self.complete_leaf(shape, value, container, key, nullable, parent,  # type: ignore[arg-type]
                               field_plan)
        elif kind is ObjectShape:
            self.complete_object(shape, value, container, key, nullable, parent,  # type: ignore[arg-type]
                                 field_plan)
        elif kind is ListShape:
            self.complete_list(shape, value, container, key, nullable, parent,  # type: ignore[arg-type]
                               field_plan)
        elif kind is AbstractShape:
            self.complete_abstract(shape, value, container, key, nullable, parent,  # type: ignore[arg-type]
                                   field_plan)
        else:  # pragma: no cover - plans only hold the shapes above
            raise TypeError(f"no completion for {shape!r}")

    def complete_leaf(self, shape: LeafShape, value: Any, container: Any, key: str | int,
                      nullable: bool, parent: _Position, field_plan: FieldPlan) -> None:
        if shape.passthrough is type(value):
            container[key] = value
            return
        try:
            serialized = shape.serialize(value)
            if serialized is None or serialized is Undefined:
                raise TypeError(
                    f"Expected `{graphql_inspect(shape.type)}.serialize({graphql_inspect(value)})`"
                    f" to return non-nullish value, got: {graphql_inspect(serialized)}")
        except Exception as error:
            self.fail(error, container, key, nullable, parent, field_plan)
            return
        container[key] = serialized

    def complete_object(self, shape: ObjectShape, value: Any, container: Any, key: str | int,
                        nullable: bool, parent: _Position, field_plan: FieldPlan) -> None:
        object_type = shape.type
        if type(value) not in shape.accepted:
            # The types' is_type_of reads only the value (gateway/graph/types.py); a type
            # without one takes any value.
            if object_type.is_type_of is not None and not object_type.is_type_of(
                    value, NO_INFO):
                self.fail(GraphQLError(f"Expected value of type '{object_type.name}' but got:"
                                       f" {graphql_inspect(value)}."),
                          container, key, nullable, parent, field_plan)
                return
            shape.accepted.add(type(value))
        if plain_reads(shape) is not None:
            try:
                container[key] = _read_plain(shape, value)
            except Exception:  # read again below, its errors located
                pass
            else:
                self.tally.bytes += shape.frame
                if self.tally.bytes >= self.next_check:
                    self.counted()
                return
        out: dict[str, Any] = {}
        container[key] = out
        self.fill(shape.selection, value, out, _Position(container, key, nullable, parent))

    def complete_list(self, shape: ListShape, value: Any, container: Any, key: str | int,
                      nullable: bool, parent: _Position, field_plan: FieldPlan) -> None:
        kind = type(value)
        if kind is not list and kind is not tuple and (
                isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable)):
            self.fail(GraphQLError("Expected Iterable, but did not find one for field"
                                   f" '{field_plan.parent_type.name}.{field_plan.name}'."),
                      container, key, nullable, parent, field_plan)
            return
        items: list[Any] = []
        container[key] = items
        position = _Position(container, key, nullable, parent)
        item_shape = shape.item
        item_nullable = type(item_shape) is not NonNullShape
        inner = item_shape if item_nullable else item_shape.inner  # type: ignore[union-attr]
        passthrough = inner.passthrough if type(inner) is LeafShape else None
        objects = inner if type(inner) is ObjectShape else None
        plain = objects is not None and plain_reads(objects) is not None
        tally = self.tally
        for index, item in enumerate(value):
            kind = type(item)
            if kind is passthrough:
                items.append(item)
            elif objects is not None and kind in objects.accepted:
                # A record of a class this type accepted before: its fields, straight away.
                if plain:
                    try:
                        items.append(_read_plain(objects, item))
                        continue
                    except Exception:  # read again below, its errors located
                        pass
                out: dict[str, Any] = {}
                items.append(out)
                self.fill(objects.selection, item, out,
                          _Position(items, index, item_nullable, position))
            else:
                items.append(None)
                if _is_awaitable_type(kind, item):  # a resolver may answer awaitables
                    self.start(item, item_shape, items, index, position, field_plan)
                else:
                    self.complete(item_shape, item, items, index, position, field_plan)
        # Once for the list: its items' frames (plain objects'; the others counted their own).
        tally.bytes += 2 + len(items) * (objects.frame if objects is not None and plain else 1)
        if tally.bytes >= self.next_check:
            self.counted()

    def complete_abstract(self, shape: AbstractShape, value: Any, container: Any,
                          key: str | int, nullable: bool, parent: _Position,
                          field_plan: FieldPlan) -> None:
        kind = type(value)
        object_shape = shape.by_class.get(kind)
        if object_shape is None:
            try:
                object_type = self.runtime_type(shape, value, field_plan, parent)
            except Exception as error:
                self.fail(error, container, key, nullable, parent, field_plan)
                return
            object_shape = shape.by_class[kind] = shape.for_type(object_type)
        self.complete_object(object_shape, value, container, key, nullable, parent, field_plan)

    def runtime_type(self, shape: AbstractShape, value: Any, field_plan: FieldPlan,
                     parent: _Position) -> GraphQLObjectType:
        abstract = shape.type
        resolve_type = abstract.resolve_type
        if resolve_type is None:
            for possible in self.schema.get_possible_types(abstract):
                if possible.is_type_of is not None and possible.is_type_of(value, NO_INFO):
                    return possible
            name = None
        else:
            name = resolve_type(value, self.info(field_plan, parent), abstract)
            if inspect.isawaitable(name):
                raise GraphQLError(f"Abstract type '{abstract.name}' resolved its type"
                                   " asynchronously, which compiled execution does not do.")
        runtime = self.schema.get_type(name) if isinstance(name, str) else None
        if not isinstance(runtime, GraphQLObjectType) or not self.schema.is_sub_type(
                abstract, runtime):
            raise GraphQLError(
                f"Abstract type '{abstract.name}' must resolve to an Object type at runtime"
                f" for field '{field_plan.parent_type.name}.{field_plan.name}'."
                f" Either the '{abstract.name}' type should provide a 'resolve_type'"
                " function or each possible type should provide an 'is_type_of' function.")
        return runtime

    # -- errors ----------------------------------------------------------------------------

    def fail(self, raw: Exception, container: Any, key: str | int, nullable: bool,
             parent: _Position, field_plan: FieldPlan) -> None:
        """A field (or list item) failed: null it, or the nearest nullable position above."""
        if parent.is_dead():
            return
        path = [*parent.path(), key]
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


_WAITING: Any = object()  # a started coroutine that waits (start): no value yet


class _NotPlain(Exception):
    """A value plain reading does not send as it is: it is read again the general way. Raised
    anew each time (rarely: a class seen first, or an error), so that no instance keeps the
    frames of its last raise alive."""


MIN_INT, MAX_INT = -(2**31), 2**31 - 1  # GraphQL's Int


def _read_plain(shape: ObjectShape, source: Any) -> dict[str, Any]:
    """An object's response from plain reads (:func:`~gateway.graph.plan.plain_reads`); the
    caller counts its frame, which holds its objects' (not its lists' items: the count is a
    lower bound, and reads this hot count nothing themselves).

    Anything else than the common case raises (a null where the schema forbids one, a value
    of another type, an attribute that raised); the caller then completes the object the
    general way, which locates the error. Values are read again there: they are records'
    attributes, with no side effects.
    """
    out: dict[str, Any] = {}
    for key, attribute, kind, nullable, detail in shape.plain:  # type: ignore[union-attr]
        if kind == PLAIN_TYPENAME:
            out[key] = detail
            continue
        value = getattr(source, attribute)
        if value is None:
            if not nullable:
                raise _NotPlain
            out[key] = None
        elif kind == PLAIN_LEAF:
            if type(value) is not detail:
                raise _NotPlain
            out[key] = value
        elif kind == PLAIN_OBJECT:
            if type(value) not in detail.accepted:
                raise _NotPlain
            out[key] = _read_plain(detail, value)
        elif kind == PLAIN_LIST:
            out[key] = _read_plain_list(detail, value)
        elif kind == PLAIN_INT:
            if type(value) is not int or not MIN_INT <= value <= MAX_INT:
                raise _NotPlain
            out[key] = value
        else:  # PLAIN_FLOAT
            if type(value) is not float or not isfinite(value):
                raise _NotPlain
            out[key] = value
    return out


def _read_plain_list(read: PlainRead, value: Any) -> list[Any]:
    if type(value) is not list and type(value) is not tuple:
        raise _NotPlain
    _, _, kind, nullable, detail = read
    if kind == PLAIN_LEAF:
        for item in value:
            if type(item) is not detail and (item is not None or not nullable):
                raise _NotPlain
        return list(value)
    accepted = detail.accepted
    items: list[Any] = []
    for item in value:
        if type(item) in accepted:
            items.append(_read_plain(detail, item))
        elif item is None and nullable:
            items.append(None)
        else:
            raise _NotPlain
    return items


class _Resumed:
    """A coroutine that was started outside a task, continued where it waits (``waiting``,
    what it yielded: the future it waits for, or None), inside the task that awaits this."""

    __slots__ = ("coroutine", "started", "waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self.coroutine = coroutine
        self.waiting = waiting
        self.started = False

    async def run(self) -> Any:
        return await self

    def cancel(self) -> None:
        """Cancel the coroutine if its task has not begun: a task cancelled before its first
        step never reaches it (a started one passes its cancellation on)."""
        if self.started:
            return
        self.started = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            self.coroutine.throw(asyncio.CancelledError())
        self.coroutine.close()

    def __await__(self) -> Generator[Any, Any, Any]:
        self.started = True
        coroutine, waiting = self.coroutine, self.waiting
        if waiting is not None:
            waiting._asyncio_future_blocking = True  # as the coroutine left it (see start)
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # the task was cancelled, or its future failed
                try:
                    waiting = coroutine.throw(error)
                except StopIteration as done:
                    return done.value
                continue
            try:
                waiting = coroutine.send(sent)
            except StopIteration as done:
                return done.value


async def _gather(awaitables: Iterable[Any]) -> list[Any]:
    return list(await asyncio.gather(*awaitables))


def _is_awaitable(value: Any) -> TypeGuard[Awaitable[Any]]:
    return inspect.isawaitable(value)


_AWAITABLE_TYPES: dict[type, bool] = {}


def _is_awaitable_type(kind: type, value: Any) -> bool:
    """Whether values of ``kind`` are awaitable, asked once per class (list items are many)."""
    known = _AWAITABLE_TYPES.get(kind)
    if known is None:
        known = _AWAITABLE_TYPES[kind] = inspect.isawaitable(value)
    return known


NO_INFO: Any = None
