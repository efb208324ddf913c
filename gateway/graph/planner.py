"""Building plans for known operations: what compiled execution does per selection, worked out
once (the plan's parts: :mod:`gateway.graph.plan`).

A plan is built from a parsed, validated query operation and the values of the variables its
``@skip``/``@include`` directives read (so each plan has a fixed shape). Per selection it holds
the response key (aliases merged as the spec's CollectFields does), how the value is read (the
record attribute of a plain field, or the schema's own resolver for a field that does work),
the arguments where they are literal, and how the value is completed: non-null and list
wrappers, the scalar or enum serialiser, or the sub-selection of an object or abstract type.

A plan is built for an answer in parts or in one (``incremental``). In parts, a fragment under
``@defer`` (its ``if`` true) is left out of its selection and kept beside it
(:class:`~gateway.graph.plan.DeferredPlan`), and a list field under ``@stream`` holds its
:class:`~gateway.graph.plan.StreamPlan`; in one answer both directives are ignored, as the
spec lets a server do.

What the compiler does not support raises :class:`Unsupported`; that operation then runs on the
standard executor: introspection, mutations and subscriptions, and directives other than
``@skip``/``@include``/``@defer``/``@stream``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
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
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    VariableNode,
    is_abstract_type,
    type_from_ast,
    value_from_ast,
)
from graphql.execution.values import get_argument_values
from graphql.language import Visitor, visit
from strawberry.resolvers import is_default_resolver
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

from gateway.graph.plain import (
    PlainRead,
    float_read,
    int_read,
    leaf_read,
    list_read,
    object_read,
    object_reader,
    typename_read,
)
from gateway.graph.plan import (
    ATTRIBUTE,
    RESOLVER,
    TYPENAME,
    AbstractShape,
    DeferredPlan,
    DirectCall,
    FieldPlan,
    LeafShape,
    ListShape,
    NonNullShape,
    NullableShape,
    ObjectShape,
    OperationPlan,
    SelectionPlan,
    Shape,
    StreamPlan,
    initial_count,
)
from gateway.graph.strawberry_internals import has_exception_handlers, strawberry_schema
from gateway.graph.walk import collect_fields

__all__ = ["Unsupported", "build_plan", "directive_variables"]


class Unsupported(Exception):
    """The operation uses something compiled execution does not do; the standard executor will."""


# -- building ------------------------------------------------------------------------------------

FAST_TYPES: dict[str, type] = {GraphQLString.name: str, GraphQLID.name: str,
                               GraphQLBoolean.name: bool}
SUPPORTED_DIRECTIVES = frozenset({"skip", "include", "defer", "stream"})
INCREMENTAL_DIRECTIVES = frozenset({"defer", "stream"})
# What ``__typename`` is (String!): no value is completed with it, the executor writes the name.
TYPENAME_SHAPE = NonNullShape(LeafShape(GraphQLString.serialize, str, GraphQLString))


def directive_variables(operation: OperationDefinitionNode,
                        fragments: Mapping[str, FragmentDefinitionNode]
                        ) -> tuple[tuple[str, ...], bool]:
    """Names of the variables the directives read (a plan is built per their values), and
    whether the operation has ``@defer`` or ``@stream`` (else one plan serves an answer in
    parts and a whole one)."""
    names: set[str] = set()
    parts = False

    class Reader(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            nonlocal parts
            parts = parts or node.name.value in INCREMENTAL_DIRECTIVES
            for argument in node.arguments or ():
                if isinstance(argument.value, VariableNode):
                    names.add(argument.value.name.value)

    for node in (operation, *fragments.values()):
        visit(node, Reader())
    return tuple(sorted(names)), parts


def build_plan(schema: GraphQLSchema, operation: OperationDefinitionNode,
               fragments: dict[str, FragmentDefinitionNode],
               variables: Mapping[str, Any], *, incremental: bool = False) -> OperationPlan:
    """The plan of a query operation; ``variables`` gives the directives' variables' values;
    ``incremental``: the answer may come in parts (``@defer`` and ``@stream`` are heeded)."""
    if operation.operation is not OperationType.QUERY:
        raise Unsupported(f"{operation.operation.value} operations")
    root = schema.query_type
    if root is None:
        raise Unsupported("a schema without a query type")
    compiler = _Compiler(schema, fragments, variables, incremental)
    return OperationPlan(operation, fragments, compiler.selection(root, [operation]))


# What a deferred fragment's selection is read from: an inline fragment or a named one.
_Deferred = tuple[str | None, InlineFragmentNode | FragmentDefinitionNode]


@dataclass
class _Compiler:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    incremental: bool = False

    def selection(self, object_type: GraphQLObjectType,
                  parents: Iterable[FieldNode | OperationDefinitionNode | InlineFragmentNode
                                    | FragmentDefinitionNode]) -> SelectionPlan:
        # The one walk (gateway/graph/walk.py), with the variables' @skip/@include; a fragment
        # deferred is kept aside, to be planned as a selection of its own.
        deferred: list[_Deferred] = []
        grouped = collect_fields(
            (parent.selection_set for parent in parents), self.fragments,
            applies=lambda condition: self._matches(condition, object_type),
            included=lambda selection: self._included(selection, object_type, deferred))
        return SelectionPlan(object_type, [self._field(object_type, key, nodes)
                                           for key, nodes in grouped.items()],
                             tuple(DeferredPlan(label, self.selection(object_type, [fragment]))
                                   for label, fragment in deferred))

    def _included(self, selection: SelectionNode, object_type: GraphQLObjectType,
                  deferred: list[_Deferred]) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in SUPPORTED_DIRECTIVES:
                raise Unsupported(f"the @{name} directive")
            if name in INCREMENTAL_DIRECTIVES:
                continue  # @stream: read by _field; @defer: below
            condition = self._condition(directive)
            if (name == "skip") is condition:
                return False
        defer = self._heeded(selection, "defer")
        if defer is None:
            return True
        fragment: InlineFragmentNode | FragmentDefinitionNode | None = None
        if isinstance(selection, InlineFragmentNode):
            fragment = selection
        elif isinstance(selection, FragmentSpreadNode):
            fragment = self.fragments.get(selection.name.value)
        if fragment is not None and (fragment.type_condition is None or self._matches(
                fragment.type_condition, object_type)):
            deferred.append((self._label(defer), fragment))
        return False

    def _heeded(self, node: SelectionNode, name: str) -> DirectiveNode | None:
        """``node``'s ``@defer`` or ``@stream`` when the answer may come in parts and its
        ``if`` is true (it defaults to true)."""
        if not self.incremental:
            return None
        for directive in node.directives or ():
            if directive.name.value == name:
                for argument in directive.arguments or ():
                    if argument.name.value == "if" and not value_from_ast(
                            argument.value, GraphQLNonNull(GraphQLBoolean), dict(self.variables)):
                        return None
                return directive
        return None

    def _label(self, directive: DirectiveNode) -> str | None:
        for argument in directive.arguments or ():
            if argument.name.value == "label":
                label = value_from_ast(argument.value, GraphQLString, dict(self.variables))
                return label if isinstance(label, str) else None
        return None

    def _stream(self, node: FieldNode) -> StreamPlan | None:
        """A field's ``@stream`` when heeded; a negative ``initialCount`` is the client's
        error (heeded or not: the same document gets the same answer either way)."""
        directive = next((d for d in node.directives or () if d.name.value == "stream"), None)
        if directive is None:
            return None
        initial = initial_count(directive, self.variables)
        if self._heeded(node, "stream") is None:
            return None
        return StreamPlan(self._label(directive), initial)

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
            return FieldPlan(key, name, nodes, parent_type, None, TYPENAME, "", TYPENAME_SHAPE,
                             False, {}, None)
        if name.startswith("__"):
            raise Unsupported("introspection")
        definition = parent_type.fields.get(name)
        if definition is None:
            raise Unsupported(f"unknown field {parent_type.name}.{name}")  # not validated
        strawberry_field = definition.extensions.get("strawberry-definition")
        plain = definition.resolve is not None and is_default_resolver(definition.resolve)
        kind = ATTRIBUTE if plain and strawberry_field is not None else RESOLVER
        attribute = strawberry_field.python_name if kind == ATTRIBUTE else ""
        arguments, error = self._literal_arguments(definition, nodes[0])
        shape = self._shape(definition.type, nodes)
        stream = self._stream(nodes[0])
        if stream is not None:
            listed = shape.inner if isinstance(shape, NonNullShape) else shape
            if isinstance(listed, ListShape):
                listed.stream = stream
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
        schema = strawberry_schema(self.schema)
        resolver = strawberry_field.base_resolver
        if schema is None or resolver is None or strawberry_field.extensions:
            return None
        converter = schema.schema_converter
        if has_exception_handlers(converter, strawberry_field):
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
            return NonNullShape(self._nullable_shape(output_type.of_type, nodes))
        return self._nullable_shape(output_type, nodes)

    def _nullable_shape(self, output_type: GraphQLOutputType, nodes: list[FieldNode]
                        ) -> NullableShape:
        if isinstance(output_type, GraphQLList):
            return ListShape(self._shape(output_type.of_type, nodes))
        if isinstance(output_type, GraphQLScalarType | GraphQLEnumType):
            fast = FAST_TYPES.get(output_type.name) if isinstance(
                output_type, GraphQLScalarType) else None
            return LeafShape(output_type.serialize, fast, output_type)
        if isinstance(output_type, GraphQLObjectType):
            return self._object_shape(output_type, nodes)
        if is_abstract_type(output_type):
            return AbstractShape(output_type, partial(self._object_shape, nodes=nodes))
        raise Unsupported(f"output type {output_type}")

    def _object_shape(self, object_type: GraphQLObjectType, nodes: list[FieldNode]
                      ) -> ObjectShape:
        """An object type's shape, with its plain reads and their reader where its selection
        is plain (:mod:`gateway.graph.plain`)."""
        shape = ObjectShape(object_type, self.selection(object_type, nodes))
        # A selection with deferred fragments is filled field by field: filling meets them.
        plain = None if shape.selection.deferred else _plain_reads(shape.selection)
        if plain is not None:
            shape.reads, frames = plain
            shape.read = object_reader(shape.reads, shape.accepted, nullable=False)
            shape.frame = shape.selection.frame + frames
        return shape


def _reads_variables(node: FieldNode) -> bool:
    found = False

    class Finder(Visitor):
        def enter_variable(self, *_: Any) -> None:
            nonlocal found
            found = True

    for argument in node.arguments or ():
        visit(argument, Finder())
    return found


def _plain_reads(selection: SelectionPlan) -> tuple[tuple[PlainRead, ...], int] | None:
    """The selection as plain reads, and the frames of the plain objects in it; None when a
    field in it is not plain (a resolver's, or of a type whose values are serialised)."""
    reads: list[PlainRead] = []
    frames = 0
    for field_plan in selection.fields:
        if field_plan.kind == TYPENAME:
            reads.append(typename_read(field_plan.key, selection.type.name))
            continue
        read = _plain_read(field_plan.key, field_plan.attribute, field_plan.shape) if (
            field_plan.kind == ATTRIBUTE) else None
        if read is None:
            return None
        reads.append(read[0])
        frames += read[1]
    return tuple(reads), frames


def _plain_read(key: str, attribute: str, shape: Shape, *, in_list: bool = False
                ) -> tuple[PlainRead, int] | None:
    """A field (or a list's items) read plainly, and the frame of the object it reads (0 for
    others); None when its values are not sent as they are. A list's items are leaves of the
    types sent as they are or objects (not numbers, not lists)."""
    nullable = type(shape) is not NonNullShape
    inner = shape.inner if type(shape) is NonNullShape else shape
    if type(inner) is LeafShape:
        if inner.passthrough is not None:
            return leaf_read(key, attribute, inner.passthrough, nullable=nullable), 0
        if in_list:
            return None
        if inner.type is GraphQLInt:
            return int_read(key, attribute, nullable=nullable), 0
        if inner.type is GraphQLFloat:
            return float_read(key, attribute, nullable=nullable), 0
        return None
    if type(inner) is ObjectShape:
        if inner.reads is None:
            return None
        return object_read(key, attribute, inner.reads, inner.accepted,
                           nullable=nullable), inner.frame
    if type(inner) is ListShape and not in_list and inner.stream is None:
        item = _plain_read("", "", inner.item, in_list=True)
        return None if item is None else (list_read(key, attribute, item[0],
                                                    nullable=nullable), 0)
    return None
