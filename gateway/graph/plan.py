"""Plans for known operations: what compiled execution does per selection, worked out once.

A plan is built from a parsed, validated query operation and the values of the variables its
``@skip``/``@include`` directives read (so each plan has a fixed shape). Per selection it holds
the response key (aliases merged as the spec's CollectFields does), how the value is read (the
record attribute of a plain field, or the schema's own resolver for a field that does work),
the arguments where they are literal, and how the value is completed: non-null and list
wrappers, the scalar or enum serialiser, or the sub-selection of an object or abstract type.

What the compiler does not support raises :class:`Unsupported`; that operation then runs on the
standard executor: introspection, mutations and subscriptions, and directives other than
``@skip``/``@include`` (``@defer``, ``@stream``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLAbstractType,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    is_abstract_type,
    type_from_ast,
    value_from_ast,
)
from graphql.execution.values import get_argument_values
from graphql.language import Visitor, visit
from strawberry.types import Info
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

from gateway.graph.walk import collect_fields

__all__ = [
    "PLAIN_FLOAT",
    "PLAIN_INT",
    "PLAIN_LEAF",
    "PLAIN_LIST",
    "PLAIN_OBJECT",
    "PLAIN_TYPENAME",
    "AbstractShape",
    "FieldPlan",
    "LeafShape",
    "ListShape",
    "NonNullShape",
    "ObjectShape",
    "OperationPlan",
    "PlainRead",
    "Shape",
    "Unsupported",
    "build_plan",
    "directive_variables",
    "plain_reads",
]


class Unsupported(Exception):
    """The operation uses something compiled execution does not do; the standard executor will."""


# -- shapes: how a field's value is completed ------------------------------------------------


@dataclass(slots=True)
class LeafShape:
    serialize: Callable[[Any], Any]
    # Values of exactly this Python type serialise to themselves (String, ID, Boolean).
    passthrough: type | None
    type: GraphQLScalarType | GraphQLEnumType


@dataclass(slots=True)
class ObjectShape:
    type: GraphQLObjectType
    selection: SelectionPlan
    # Python classes ``is_type_of`` accepted: the types' checks are isinstance checks
    # (gateway/graph/types.py), so one answer per class holds for every value of it.
    accepted: set[builtins.type] = field(default_factory=set)
    # The selection as plain reads (see :func:`plain_reads`), or None; worked out on first use.
    plain: tuple[PlainRead, ...] | None = None
    plain_known: bool = False
    # Plain: the selection's frame (see SelectionPlan) and its plain objects' (not lists').
    frame: int = 0


@dataclass(slots=True)
class AbstractShape:
    type: GraphQLAbstractType
    # The plan per possible object type, built on first use (keyed by type name).
    nodes: list[FieldNode]
    compiler: _Compiler
    by_type: dict[str, ObjectShape] = field(default_factory=dict)
    # The object shape each Python class resolved to: our types' resolution reads only the
    # value's class (records are served as they are), so one answer per class holds.
    by_class: dict[builtins.type, ObjectShape] = field(default_factory=dict)

    def for_type(self, object_type: GraphQLObjectType) -> ObjectShape:
        shape = self.by_type.get(object_type.name)
        if shape is None:
            selection = self.compiler.selection(object_type, self.nodes)
            shape = self.by_type[object_type.name] = ObjectShape(object_type, selection)
        return shape


@dataclass(slots=True)
class ListShape:
    item: Shape


@dataclass(slots=True)
class NonNullShape:
    inner: Shape


Shape = LeafShape | ObjectShape | AbstractShape | ListShape | NonNullShape

TYPENAME, ATTRIBUTE, RESOLVER = 0, 1, 2

# A plain read: (response key, attribute, what it reads, nullable, detail). What it reads:
# PLAIN_TYPENAME (detail: the type's name), PLAIN_LEAF (detail: the one Python type sent as it
# is: str, bool), PLAIN_INT and PLAIN_FLOAT (an int within 32 bits, a finite float: what Int
# and Float send as they are), PLAIN_OBJECT (detail: the object's shape, itself plain),
# PLAIN_LIST (detail: a plain read of the items, a PLAIN_LEAF or PLAIN_OBJECT, its key and
# attribute unused).
PLAIN_TYPENAME, PLAIN_LEAF, PLAIN_OBJECT, PLAIN_LIST, PLAIN_INT, PLAIN_FLOAT = range(6)
PlainRead = tuple[str, str, int, bool, Any]


def plain_reads(shape: ObjectShape) -> tuple[PlainRead, ...] | None:
    """The shape's selection as plain reads, when every field in it, and in the objects and
    lists under it, is a record attribute holding values sent as they are (strings, ids,
    booleans): such a tree is read with no resolver, serialiser or position. None otherwise."""
    if not shape.plain_known:
        shape.plain_known = True  # first, so that a cycle of types reads as not plain
        reads = [_plain_read(f.key, f.attribute, f.shape) if f.kind == ATTRIBUTE else
                 (f.key, "", PLAIN_TYPENAME, False, shape.type.name) if f.kind == TYPENAME
                 else None for f in shape.selection.fields]
        shape.plain = None if None in reads else tuple(r for r in reads if r is not None)
        shape.frame = shape.selection.frame + sum(
            r[4].frame for r in shape.plain or () if r[2] == PLAIN_OBJECT)
    return shape.plain


def _plain_read(key: str, attribute: str, shape: Shape | None) -> PlainRead | None:
    nullable = not isinstance(shape, NonNullShape)
    inner = shape.inner if isinstance(shape, NonNullShape) else shape
    if isinstance(inner, LeafShape):
        if inner.passthrough is not None:
            return key, attribute, PLAIN_LEAF, nullable, inner.passthrough
        number = {GraphQLInt.name: PLAIN_INT, GraphQLFloat.name: PLAIN_FLOAT}.get(
            inner.type.name) if inner.type in (GraphQLInt, GraphQLFloat) else None
        return None if number is None else (key, attribute, number, nullable, None)
    if isinstance(inner, ObjectShape):
        return None if plain_reads(inner) is None else (
            key, attribute, PLAIN_OBJECT, nullable, inner)
    if isinstance(inner, ListShape):
        item = _plain_read("", "", inner.item)
        if item is None or item[2] not in (PLAIN_LEAF, PLAIN_OBJECT):
            return None
        return key, attribute, PLAIN_LIST, nullable, item
    return None


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
    shape: Shape | None
    nullable: bool
    # Literal arguments coerced once; None when they read variables (coerced per request).
    arguments: dict[str, Any] | None
    argument_error: Exception | None  # what coercing literal arguments raised, raised per call
    direct: DirectCall | None = None  # how to call the resolver without strawberry's wrapper
    python_arguments: dict[str, Any] | None = None  # ``arguments`` converted for ``direct``
    # A leaf field's serialiser, unwrapped from its non-null wrapper: the common case inline.
    leaf: LeafShape | None = None


@dataclass(slots=True)
class SelectionPlan:
    type: GraphQLObjectType
    fields: list[FieldPlan]
    # The JSON bytes of an object of this selection besides its strings' characters (braces,
    # keys and their punctuation, a byte at least per value): what the executor counts.
    frame: int = 0

    def __post_init__(self) -> None:
        self.frame = 2 + sum(len(f.key) + 5 for f in self.fields)


@dataclass(slots=True)
class OperationPlan:
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    root: SelectionPlan


# -- building ------------------------------------------------------------------------------------

FAST_TYPES: dict[str, type] = {GraphQLString.name: str, GraphQLID.name: str,
                               GraphQLBoolean.name: bool}
SUPPORTED_DIRECTIVES = frozenset({"skip", "include"})


def directive_variables(operation: OperationDefinitionNode,
                        fragments: Mapping[str, FragmentDefinitionNode]) -> tuple[str, ...]:
    """Names of the variables ``@skip``/``@include`` read: a plan is built per their values."""
    names: set[str] = set()

    class Reader(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            for argument in node.arguments or ():
                if isinstance(argument.value, VariableNode):
                    names.add(argument.value.name.value)

    for node in (operation, *fragments.values()):
        visit(node, Reader())
    return tuple(sorted(names))


def build_plan(schema: GraphQLSchema, operation: OperationDefinitionNode,
               fragments: dict[str, FragmentDefinitionNode],
               variables: Mapping[str, Any]) -> OperationPlan:
    """The plan of a query operation; ``variables`` gives the directives' variables' values."""
    if operation.operation is not OperationType.QUERY:
        raise Unsupported(f"{operation.operation.value} operations")
    root = schema.query_type
    if root is None:
        raise Unsupported("a schema without a query type")
    compiler = _Compiler(schema, fragments, variables)
    return OperationPlan(operation, fragments, compiler.selection(root, [operation]))


@dataclass
class _Compiler:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]

    def selection(self, object_type: GraphQLObjectType,
                  parents: Iterable[FieldNode | OperationDefinitionNode]) -> SelectionPlan:
        # The one walk (gateway/graph/walk.py), with the variables' @skip/@include.
        grouped = collect_fields(
            (parent.selection_set for parent in parents), self.fragments,
            applies=lambda condition: self._matches(condition, object_type),
            included=lambda selection: self._included(selection.directives))
        return SelectionPlan(object_type, [self._field(object_type, key, nodes)
                                           for key, nodes in grouped.items()])

    def _included(self, directives: Iterable[DirectiveNode] | None) -> bool:
        for directive in directives or ():
            name = directive.name.value
            if name not in SUPPORTED_DIRECTIVES:
                raise Unsupported(f"the @{name} directive")
            condition = self._condition(directive)
            if (name == "skip") is condition:
                return False
        return True

    def _condition(self, directive: DirectiveNode) -> bool:
        for argument in directive.arguments or ():
            if argument.name.value == "if":
                value = value_from_ast(argument.value, GraphQLNonNull(GraphQLBoolean),
                                       dict(self.variables))
                return bool(value)
        raise Unsupported(f"@{directive.name.value} without `if`")

    def _matches(self, condition: Any, object_type: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        condition_type = type_from_ast(self.schema, condition)
        if condition_type is object_type:
            return True
        return is_abstract_type(condition_type) and self.schema.is_sub_type(
            condition_type, object_type)

    def _field(self, parent_type: GraphQLObjectType, key: str, nodes: list[FieldNode]
               ) -> FieldPlan:
        name = nodes[0].name.value
        if name == "__typename":
            return FieldPlan(key, name, nodes, parent_type, None, TYPENAME, "", None, False,
                             {}, None)
        if name.startswith("__"):
            raise Unsupported("introspection")
        definition = parent_type.fields.get(name)
        if definition is None:
            raise Unsupported(f"unknown field {parent_type.name}.{name}")  # not validated
        strawberry_field = definition.extensions.get("strawberry-definition")
        plain = bool(getattr(definition.resolve, "_is_default", False))
        kind = ATTRIBUTE if plain and strawberry_field is not None else RESOLVER
        attribute = strawberry_field.python_name if kind == ATTRIBUTE else ""
        arguments, error = self._literal_arguments(definition, nodes[0])
        shape = self._shape(definition.type, nodes)
        plan = FieldPlan(key, name, nodes, parent_type, definition, kind, attribute, shape,
                         not isinstance(definition.type, GraphQLNonNull), arguments, error)
        inner = shape.inner if isinstance(shape, NonNullShape) else shape
        plan.leaf = inner if isinstance(inner, LeafShape) else None
        if kind == RESOLVER and strawberry_field is not None:
            plan.direct = self._direct(strawberry_field)
            if plan.direct is not None and arguments is not None:
                try:
                    plan.python_arguments = plan.direct.convert(arguments)
                except Exception:
                    plan.direct = None  # strawberry's wrapper reports it, per call
        return plan

    def _direct(self, strawberry_field: StrawberryField) -> DirectCall | None:
        schema = getattr(self.schema, "_strawberry_schema", None)
        resolver = strawberry_field.base_resolver
        if schema is None or resolver is None or strawberry_field.extensions:
            return None
        converter = schema.schema_converter
        if converter._get_field_exception_handlers(strawberry_field):
            return None
        info = resolver.info_parameter
        source_names = tuple(p.name for p in (resolver.root_parameter,
                                              resolver.parent_parameter) if p is not None)
        return DirectCall(
            strawberry_field, resolver, schema.config.info_class,
            resolver.self_parameter is not None, info.name if info else None, source_names,
            partial(convert_arguments, arguments=strawberry_field.arguments,
                    scalar_registry=converter.scalar_registry, config=schema.config))

    def _literal_arguments(self, definition: GraphQLField, node: FieldNode
                           ) -> tuple[dict[str, Any] | None, Exception | None]:
        if not definition.args and not node.arguments:
            return {}, None
        if _reads_variables(node):
            return None, None
        try:
            return get_argument_values(definition, node), None
        except Exception as error:  # raised again, located, when the field runs
            return None, error

    def _shape(self, output_type: GraphQLOutputType, nodes: list[FieldNode]) -> Shape:
        if isinstance(output_type, GraphQLNonNull):
            return NonNullShape(self._shape(output_type.of_type, nodes))
        if isinstance(output_type, GraphQLList):
            return ListShape(self._shape(output_type.of_type, nodes))
        if isinstance(output_type, GraphQLScalarType | GraphQLEnumType):
            fast = FAST_TYPES.get(output_type.name) if isinstance(
                output_type, GraphQLScalarType) else None
            return LeafShape(output_type.serialize, fast, output_type)
        if isinstance(output_type, GraphQLObjectType):
            return ObjectShape(output_type, self.selection(output_type, nodes))
        if is_abstract_type(output_type):
            return AbstractShape(output_type, nodes, self)
        raise Unsupported(f"output type {output_type}")


def _reads_variables(node: FieldNode) -> bool:
    found = False

    class Finder(Visitor):
        def enter_variable(self, *_: Any) -> None:
            nonlocal found
            found = True

    for argument in node.arguments or ():
        visit(argument, Finder())
    return found

