"""A plan: what compiled execution does per selection of a known operation, worked out once by
:mod:`gateway.graph.planner` and run by :mod:`gateway.graph.executor`.

Per selection (:class:`SelectionPlan`), each field (:class:`FieldPlan`) holds its response key,
how its value is read (the record attribute of a plain field, or the schema's own resolver for a
field that does work), its arguments where they are literal, and its shape: how its value is
completed. The shapes complete values as the spec's CompleteValue says
(https://spec.graphql.org/October2021/#CompleteValue(), graphql-core's ``complete_value``):
:func:`complete_value` takes the steps every type shares (a null: null, or a field error under
a non-null type, :class:`NonNullShape`; and, as graphql-core does, an exception the resolver
raised or returned is the field's error), then the value's kind of type completes it, each with
its own ``complete``:

* :class:`ListShape`: each item completed with the item's shape;
* :class:`LeafShape`: scalars and enums, serialised by their type (CoerceResult);
* :class:`ObjectShape`: the value checked with ``is_type_of``, then its selection executed
  (ExecuteSelectionSet: the executor's ``fill``), or read plainly (:mod:`gateway.graph.plain`);
* :class:`AbstractShape`: interfaces and unions, the runtime type resolved
  (ResolveAbstractType), then completed as that object type.

A fast path skips steps, it does not repeat them: the executor hands a leaf field's value (not
null) straight to its :class:`LeafShape`, and a list hands an item of a class its object type
accepted before straight to :meth:`ObjectShape.execute`.
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, final

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLAbstractType,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql.pyutils import Undefined
from graphql.pyutils import inspect as graphql_inspect
from graphql.utilities import value_from_ast
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from gateway.errors import ErrorCode
from gateway.graph.plain import PlainRead, Reader

__all__ = [
    "ATTRIBUTE",
    "RESOLVER",
    "TYPENAME",
    "AbstractShape",
    "BadDirective",
    "DeferredPlan",
    "DirectCall",
    "FieldPlan",
    "LeafShape",
    "ListShape",
    "NonNullShape",
    "NullableShape",
    "ObjectShape",
    "OperationPlan",
    "Position",
    "Run",
    "SelectionPlan",
    "Shape",
    "StreamPlan",
    "complete_value",
    "initial_count",
]


class Position:
    """Where a completed object or list sits, so that a null can move up from inside it."""

    __slots__ = ("container", "dead", "key", "nullable", "parent")

    def __init__(self, container: Any, key: str | int, nullable: bool,
                 parent: Position | None) -> None:
        self.container = container
        self.key = key
        self.nullable = nullable
        self.parent = parent
        self.dead = False

    def path(self) -> list[str | int]:
        keys: list[str | int] = []
        position: Position | None = self
        while position is not None and position.parent is not None:
            keys.append(position.key)
            position = position.parent
        keys.reverse()
        return keys

    def is_dead(self) -> bool:
        position: Position | None = self
        while position is not None:
            if position.dead:
                return True
            position = position.parent
        return False


class Run(Protocol):
    """What completing a value asks of the execution it is part of (the executor's run)."""

    schema: GraphQLSchema

    def fill(self, selection: SelectionPlan, source: Any, out: dict[str, Any],
             position: Position) -> None:
        """Execute ``selection`` on ``source`` into ``out`` (ExecuteSelectionSet)."""

    def start(self, awaitable: Any, shape: Shape, container: Any, key: str | int,
              position: Position, field_plan: FieldPlan) -> None:
        """Complete at ``container[key]`` what ``awaitable`` gives, now or once it is done."""

    def fail(self, raw: Exception, container: Any, key: str | int, nullable: bool,
             parent: Position, field_plan: FieldPlan) -> None:
        """``container[key]`` failed: null it (or the nearest nullable position above) and
        report the error, located."""

    def count(self, built: int) -> None:
        """``built`` more bytes of the answer were built (the budget: see the executor)."""

    def info(self, field_plan: FieldPlan, position: Position) -> GraphQLResolveInfo[Any]:
        """The resolve info of ``field_plan``'s value under ``position``."""

    def stream(self, shape: ListShape, rest: list[Any], position: Position,
               field_plan: FieldPlan) -> None:
        """A streamed list's items past its ``initialCount`` (``rest``, of the list at
        ``position``) are delivered later, in order."""


# -- shapes: how a field's value is completed ------------------------------------------------


def complete_value(run: Run, shape: Shape, value: Any, container: Any, key: str | int,
                   parent: Position, field_plan: FieldPlan) -> None:
    """Write the completed ``value`` at ``container[key]``, or null it with an error: the
    steps of CompleteValue every type shares, then the value's kind of type completes it."""
    nullable = True
    if type(shape) is NonNullShape:
        nullable, kind = False, shape.inner
    else:
        kind = shape
    if value is None:
        if nullable:
            container[key] = None
        else:
            run.fail(GraphQLError(
                "Cannot return null for non-nullable field"
                f" {field_plan.parent_type.name}.{field_plan.name}."),
                container, key, nullable, parent, field_plan)
        return
    if isinstance(value, Exception):
        run.fail(value, container, key, nullable, parent, field_plan)
        return
    kind.complete(run, value, container, key, nullable, parent, field_plan)


@final
@dataclass(slots=True)
class NonNullShape:
    """A non-null type: a null is a field error (see :func:`complete_value`)."""

    inner: NullableShape


@final
@dataclass(slots=True)
class ListShape:
    item: Shape
    # Set on a field's own list when it is streamed (``@stream``) and the answer may come in
    # parts: the items past the initial count are the run's to deliver later.
    stream: StreamPlan | None = None

    def complete(self, run: Run, value: Any, container: Any, key: str | int, nullable: bool,
                 parent: Position, field_plan: FieldPlan) -> None:
        """A list: an iterable (not a string or a mapping), each item completed as
        ``item``."""
        kind = type(value)
        if kind is not list and kind is not tuple and (
                isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable)):
            run.fail(GraphQLError("Expected Iterable, but did not find one for field"
                                  f" '{field_plan.parent_type.name}.{field_plan.name}'."),
                     container, key, nullable, parent, field_plan)
            return
        items: list[Any] = []
        container[key] = items
        position = Position(container, key, nullable, parent)
        item_shape = self.item
        inner = item_shape.inner if type(item_shape) is NonNullShape else item_shape
        item_nullable = inner is item_shape
        # The fast paths: a leaf's value of the type it sends as it is needs no completion; an
        # object of a class its type accepted before goes straight to its selection.
        passthrough = inner.passthrough if type(inner) is LeafShape else None
        objects = inner if type(inner) is ObjectShape else None
        stream = self.stream
        if stream is not None:
            value = list(value)
            if len(value) > stream.initial_count:
                run.stream(self, value[stream.initial_count:], position, field_plan)
                value = value[:stream.initial_count]
        for index, item in enumerate(value):
            kind = type(item)
            if kind is passthrough:
                items.append(item)
                continue
            items.append(None)
            if objects is not None and kind in objects.accepted:
                objects.execute(run, item, items, index, item_nullable, position)
            elif _is_awaitable_type(kind, item):  # a resolver may answer awaitables
                run.start(item, item_shape, items, index, position, field_plan)
            else:
                complete_value(run, item_shape, item, items, index, position, field_plan)
        # Once for the list: its items' frames (plain objects'; the others counted their own).
        run.count(2 + len(items) * (
            objects.frame if objects is not None and objects.read is not None else 1))


@final
@dataclass(slots=True)
class LeafShape:
    serialize: Callable[[Any], Any]
    # Values of exactly this Python type serialise to themselves (String, ID, Boolean).
    passthrough: type | None
    type: GraphQLScalarType | GraphQLEnumType

    def complete(self, run: Run, value: Any, container: Any, key: str | int, nullable: bool,
                 parent: Position, field_plan: FieldPlan) -> None:
        """A scalar or an enum: the value serialised by its type (the spec's CoerceResult);
        a value that already is what the type sends passes straight through."""
        if type(value) is self.passthrough:
            container[key] = value
            return
        try:
            serialized = self.serialize(value)
            if serialized is None or serialized is Undefined:
                raise TypeError(
                    f"Expected `{graphql_inspect(self.type)}.serialize("
                    f"{graphql_inspect(value)})` to return non-nullish value, got:"
                    f" {graphql_inspect(serialized)}")
        except Exception as error:
            run.fail(error, container, key, nullable, parent, field_plan)
            return
        container[key] = serialized


@final
@dataclass(slots=True)
class ObjectShape:
    type: GraphQLObjectType
    selection: SelectionPlan
    # Python classes ``is_type_of`` accepted: the types' checks are isinstance checks
    # (gateway/graph/types.py), so one answer per class holds for every value of it.
    accepted: set[builtins.type] = field(default_factory=set)
    # Set by the planner where the selection is plain (every field in it, and in the objects
    # and lists under it, a record attribute sending its values as they are:
    # gateway/graph/plain.py): its plain reads, their reader, and the frame a plain read
    # counts: the selection's (see SelectionPlan) and its plain objects' (not its lists').
    reads: tuple[PlainRead, ...] | None = None
    read: Reader | None = None
    frame: int = 0

    def complete(self, run: Run, value: Any, container: Any, key: str | int, nullable: bool,
                 parent: Position, field_plan: FieldPlan) -> None:
        """An object: the value checked with its type's ``is_type_of`` (once per class), then
        its selection executed."""
        if type(value) not in self.accepted:
            # The types' is_type_of reads only the value (gateway/graph/types.py); a type
            # without one takes any value.
            is_type_of = self.type.is_type_of
            if is_type_of is not None and not is_type_of(value, NO_INFO):
                run.fail(GraphQLError(f"Expected value of type '{self.type.name}' but got:"
                                      f" {graphql_inspect(value)}."),
                         container, key, nullable, parent, field_plan)
                return
            self.accepted.add(type(value))
        if self.execute(run, value, container, key, nullable, parent):
            run.count(self.frame)

    def execute(self, run: Run, value: Any, container: Any, key: str | int, nullable: bool,
                parent: Position) -> bool:
        """The selection executed on ``value`` (of a class this type accepted) at
        ``container[key]``: read plainly where the reader takes it (True: the caller counts
        its frame), else field by field (False: ``fill`` counts what it builds)."""
        read = self.read
        if read is not None:
            try:
                container[key] = read(value)
            except Exception:  # read again below, its errors located
                pass
            else:
                return True
        out: dict[str, Any] = {}
        container[key] = out
        run.fill(self.selection, value, out, Position(container, key, nullable, parent))
        return False


@final
@dataclass(slots=True)
class AbstractShape:
    type: GraphQLAbstractType
    # The shape of a possible object type (the planner's, for this field's nodes).
    object_shape: Callable[[GraphQLObjectType], ObjectShape]
    # The shape per possible object type, built on first use (keyed by type name).
    by_type: dict[str, ObjectShape] = field(default_factory=dict)
    # The object shape each Python class resolved to: our types' resolution reads only the
    # value's class (records are served as they are), so one answer per class holds.
    by_class: dict[builtins.type, ObjectShape] = field(default_factory=dict)

    def complete(self, run: Run, value: Any, container: Any, key: str | int, nullable: bool,
                 parent: Position, field_plan: FieldPlan) -> None:
        """An interface or a union: the value's object type resolved (once per class), then
        the value completed as an object of it."""
        kind = type(value)
        object_shape = self.by_class.get(kind)
        if object_shape is None:
            try:
                object_type = self.runtime_type(run, value, field_plan, parent)
            except Exception as error:
                run.fail(error, container, key, nullable, parent, field_plan)
                return
            object_shape = self.by_class[kind] = self.for_type(object_type)
        object_shape.complete(run, value, container, key, nullable, parent, field_plan)

    def for_type(self, object_type: GraphQLObjectType) -> ObjectShape:
        shape = self.by_type.get(object_type.name)
        if shape is None:
            shape = self.by_type[object_type.name] = self.object_shape(object_type)
        return shape

    def runtime_type(self, run: Run, value: Any, field_plan: FieldPlan, parent: Position
                     ) -> GraphQLObjectType:
        """The spec's ResolveAbstractType, as graphql-core does it (``is_type_of`` of each
        possible type when the abstract type has no ``resolve_type``)."""
        abstract, schema = self.type, run.schema
        resolve_type = abstract.resolve_type
        if resolve_type is None:
            for possible in schema.get_possible_types(abstract):
                if possible.is_type_of is not None and possible.is_type_of(value, NO_INFO):
                    return possible
            name = None
        else:
            name = resolve_type(value, run.info(field_plan, parent), abstract)
            if inspect.isawaitable(name):
                raise GraphQLError(f"Abstract type '{abstract.name}' resolved its type"
                                   " asynchronously, which compiled execution does not do.")
        runtime = schema.get_type(name) if isinstance(name, str) else None
        if not isinstance(runtime, GraphQLObjectType) or not schema.is_sub_type(
                abstract, runtime):
            raise GraphQLError(
                f"Abstract type '{abstract.name}' must resolve to an Object type at runtime"
                f" for field '{field_plan.parent_type.name}.{field_plan.name}'."
                f" Either the '{abstract.name}' type should provide a 'resolve_type'"
                " function or each possible type should provide an 'is_type_of' function.")
        return runtime


NullableShape = ListShape | LeafShape | ObjectShape | AbstractShape
Shape = NonNullShape | NullableShape

NO_INFO: Any = None  # the types' is_type_of reads only the value

_AWAITABLE_TYPES: dict[type, bool] = {}


def _is_awaitable_type(kind: type, value: Any) -> bool:
    """Whether values of ``kind`` are awaitable, asked once per class (list items are many)."""
    known = _AWAITABLE_TYPES.get(kind)
    if known is None:
        known = _AWAITABLE_TYPES[kind] = inspect.isawaitable(value)
    return known


# -- the plan ------------------------------------------------------------------------------------

TYPENAME, ATTRIBUTE, RESOLVER = 0, 1, 2  # what a field is: its kind


@dataclass(slots=True)
class DirectCall:
    """A strawberry resolver called as strawberry's own wrapper calls it, minus the per-call
    conversion of literal arguments (converted once, at planning)."""

    field: StrawberryField
    resolver: Callable[..., Any]
    info_class: type[Info[Any, Any]]
    pass_self: bool
    info_name: str | None
    source_names: tuple[str, ...]  # parameters asking for the parent value (root, parent)
    convert: Callable[[dict[str, Any]], dict[str, Any]]  # GraphQL arguments → Python ones


@dataclass(slots=True)
class FieldPlan:
    key: str  # the response key (alias or name)
    name: str
    nodes: list[FieldNode]
    parent_type: GraphQLObjectType
    definition: GraphQLField | None  # None for __typename
    kind: int  # TYPENAME, ATTRIBUTE or RESOLVER
    attribute: str  # the record attribute of an ATTRIBUTE field
    shape: Shape
    nullable: bool
    # Literal arguments coerced once; None when they read variables (coerced per request).
    arguments: dict[str, Any] | None
    argument_error: Exception | None  # what coercing literal arguments raised, raised per call
    direct: DirectCall | None = None  # how to call the resolver without strawberry's wrapper
    python_arguments: dict[str, Any] | None = None  # ``arguments`` converted for ``direct``
    # A leaf field's shape, unwrapped from its non-null wrapper: its value (not null) goes
    # straight to it.
    leaf: LeafShape | None = None


@dataclass(slots=True)
class SelectionPlan:
    type: GraphQLObjectType
    fields: list[FieldPlan]
    # Fragments of this selection deferred (``@defer``) when the answer may come in parts:
    # each executed on the same object once the part that holds the object is sent.
    deferred: tuple[DeferredPlan, ...] = ()
    # The JSON bytes of an object of this selection besides its strings' characters (braces,
    # keys and their punctuation, a byte at least per value): what the executor counts.
    frame: int = 0

    def __post_init__(self) -> None:
        self.frame = 2 + sum(len(f.key) + 5 for f in self.fields)


@dataclass(slots=True)
class DeferredPlan:
    """A deferred fragment: its label and its selection (all its fields, as the
    ``deferSpec=20220824`` answers carry them; a client merges what it already has)."""

    label: str | None
    selection: SelectionPlan


class BadDirective(Exception):
    """A directive's argument the client got wrong: the request's error, before any call."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


def initial_count(directive: DirectiveNode, variables: Mapping[str, Any] | None) -> int:
    """``@stream``'s ``initialCount`` (0 when not given); :class:`BadDirective` when negative
    (heeded or not: the same document gets the same answer either way)."""
    for argument in directive.arguments or ():
        if argument.name.value == "initialCount":
            value = value_from_ast(argument.value, GraphQLInt, dict(variables or {}))
            if isinstance(value, int) and value < 0:
                raise BadDirective(GraphQLError(
                    f"@stream's initialCount must be 0 or more, got {value}", nodes=[directive],
                    extensions={"code": ErrorCode.BAD_USER_INPUT.value}))
            return value if isinstance(value, int) else 0
    return 0


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """A streamed list field: its label and the items sent with the part that holds it."""

    label: str | None
    initial_count: int


@dataclass(slots=True)
class OperationPlan:
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    root: SelectionPlan
