"""An operation's variables coerced as graphql-core coerces them, with a shortcut for the
common case (every variable an ID or a String, given as one): compiled execution's first step
(:mod:`gateway.graph.compiled`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    Undefined,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import VariableValues, VariableValueSource, get_variable_values

__all__ = ["VariableCoercion", "coerce_variables"]


def coerce_variables(schema: GraphQLSchema, operation: OperationDefinitionNode,
                     raw: Mapping[str, Any] | None) -> VariableValues | list[GraphQLError]:
    """The operation's variables coerced as graphql-core does, or the request errors."""
    return get_variable_values(schema, operation.variable_definitions or (), dict(raw or {}))


class VariableCoercion:
    """One operation's variables coerced (:func:`coerce_variables`), with a shortcut where
    graphql-core would return the values as given: every variable an ID or a String, alone or
    in a list, and given as one (30 ids of ``nodes(ids:)`` cost more to coerce than to look up
    warm). Anything else — a default, a missing value, another type or shape — takes the full
    coercion, and so gets its errors."""

    def __init__(self, schema: GraphQLSchema, operation: OperationDefinitionNode) -> None:
        self.schema = schema
        self.operation = operation
        self._plain = _plain_variables(schema, operation)

    def __call__(self, raw: Mapping[str, Any] | None) -> VariableValues | list[GraphQLError]:
        plain = self._plain
        if plain is not None and raw is not None:
            given = {name: raw.get(name, Undefined) for name, _, _ in plain}
            if all(_is_plain(given[name], shape) for name, _, shape in plain):
                return VariableValues(
                    {name: VariableValueSource(signature, given[name])
                     for name, signature, _ in plain}, given)
        return coerce_variables(self.schema, self.operation, raw)


# The shapes a plain variable takes: (list or not, the list may be null, items may be null)
_Shape = tuple[bool, bool, bool]


def _plain_variables(schema: GraphQLSchema, operation: OperationDefinitionNode
                     ) -> list[tuple[str, GraphQLVariableSignature, _Shape]] | None:
    """Each variable's signature and shape, if every one is plain (else None)."""
    plain = []
    for definition in operation.variable_definitions or ():
        signature = get_variable_signature(schema, definition)
        if isinstance(signature, GraphQLError) or definition.default_value is not None:
            return None
        type_: Any = signature.type
        nullable = True
        if isinstance(type_, GraphQLNonNull):
            type_, nullable = type_.of_type, False
        listed, items_nullable = isinstance(type_, GraphQLList), nullable
        if listed:
            type_, items_nullable = type_.of_type, True
            if isinstance(type_, GraphQLNonNull):
                type_, items_nullable = type_.of_type, False
        if type_ is not GraphQLID and type_ is not GraphQLString:
            return None
        plain.append((signature.name, signature, (listed, nullable, items_nullable)))
    return plain


def _is_plain(value: Any, shape: _Shape) -> bool:
    listed, nullable, items_nullable = shape
    if value is None:
        return nullable
    if not listed:
        return type(value) is str
    return type(value) is list and all(
        type(item) is str or (item is None and items_nullable) for item in value)
