"""Reading ahead in the query: what a field's value selects, before resolving it.

Used to ask upstreams only for what is needed (Comestri's response fields), to count only when
``totalCount`` is asked, and to fetch Axim groups with their first product page in one call.
The fields are collected by the one walk (:func:`gateway.graph.walk.selected`): through every
fragment, directives (``@skip``/``@include``) and type conditions not read, so a look-ahead may
ask for a little more than a query uses, never less.
"""

from __future__ import annotations

from typing import Any, cast

from graphql import FieldNode, value_from_ast_untyped
from graphql.pyutils import Undefined
from strawberry.types import Info

from gateway.graph.strawberry_internals import raw_info
from gateway.graph.walk import selected

__all__ = ["arguments", "item_fields", "wants"]


def wants(info: Info[Any, Any], name: str) -> bool:
    """Whether the current field's value selects ``name``.

    The names are read once per field of the query and request (``scope.selections``): every
    item of a list asks the same question.
    """
    raw = raw_info(info)
    memo = info.context.scope.selections
    key = tuple(id(node) for node in raw.field_nodes)
    names = memo.get(key)
    if names is None:
        found = selected((node.selection_set for node in raw.field_nodes), raw.fragments)
        names = memo[key] = frozenset(f.name.value for f in found)
    return name in names


def item_fields(info: Info[Any, Any]) -> list[FieldNode]:
    """Fields selected on a connection's items, through ``nodes`` and ``edges { node }``."""
    raw = raw_info(info)
    found: list[FieldNode] = []
    for field in selected((node.selection_set for node in raw.field_nodes), raw.fragments):
        if field.name.value == "nodes":
            found += selected([field.selection_set], raw.fragments)
        elif field.name.value == "edges":
            for edge_field in selected([field.selection_set], raw.fragments):
                if edge_field.name.value == "node":
                    found += selected([edge_field.selection_set], raw.fragments)
    return found


def arguments(info: Info[Any, Any], field: FieldNode) -> dict[str, Any]:
    """A field's arguments as written, with variables replaced by their (coerced) values."""
    # The coerced values by name (a dict at run time, whatever graphql-core's stubs say).
    variables = cast("dict[str, Any]", raw_info(info).variable_values)
    values = {arg.name.value: value_from_ast_untyped(arg.value, variables)
              for arg in field.arguments or ()}
    # A variable the request did not send leaves its argument unset, as if it were not written.
    return {name: value for name, value in values.items() if value is not Undefined}
