"""Reading ahead in the query: what a field's value selects, before resolving it.

Used to ask upstreams only for what is needed (Comestri's response fields), to count only when
``totalCount`` is asked, and to fetch Axim groups with their first product page in one call.
One walk over graphql-core's AST, looking through fragments; directives (``@skip``/``@include``)
are not evaluated, so a look-ahead may ask for a little more than a query uses, never less.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
    value_from_ast_untyped,
)
from graphql.pyutils import Undefined
from strawberry.types import Info

__all__ = ["arguments", "item_fields", "wants"]

Fragments = dict[str, FragmentDefinitionNode]


def fields(selection_sets: Iterable[SelectionSetNode | None], fragments: Fragments,
           visited: set[str] | None = None) -> Iterator[FieldNode]:
    """The fields of selection sets, looking through inline fragments and fragment spreads
    (each fragment once, as the spec's CollectFields: spreading it again adds nothing, and a
    document that spreads fragments in fragments would otherwise cost exponential time)."""
    visited = set() if visited is None else visited
    for selection_set in selection_sets:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from fields((selection.selection_set,), fragments, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in visited:
                    visited.add(name)
                    yield from fields((fragment.selection_set,), fragments, visited)


def _raw(info: Info[Any, Any]) -> GraphQLResolveInfo[Any]:
    return info._raw_info


def wants(info: Info[Any, Any], name: str) -> bool:
    """Whether the current field's value selects ``name``.

    The names are read once per field of the query and request (``scope.selections``): every
    item of a list asks the same question.
    """
    raw = _raw(info)
    memo = info.context.scope.selections
    key = tuple(id(node) for node in raw.field_nodes)
    names = memo.get(key)
    if names is None:
        found = fields((node.selection_set for node in raw.field_nodes), raw.fragments)
        names = memo[key] = frozenset(f.name.value for f in found)
    return name in names


def item_fields(info: Info[Any, Any]) -> list[FieldNode]:
    """Fields selected on a connection's items, through ``nodes`` and ``edges { node }``."""
    raw = _raw(info)
    found: list[FieldNode] = []
    for field in fields((node.selection_set for node in raw.field_nodes), raw.fragments):
        if field.name.value == "nodes":
            found += fields([field.selection_set], raw.fragments)
        elif field.name.value == "edges":
            for edge_field in fields([field.selection_set], raw.fragments):
                if edge_field.name.value == "node":
                    found += fields([edge_field.selection_set], raw.fragments)
    return found


def arguments(info: Info[Any, Any], field: FieldNode) -> dict[str, Any]:
    """A field's arguments as written, with variables replaced by their (coerced) values."""
    # The coerced values by name (a dict at run time, whatever graphql-core's stubs say).
    variables = cast("dict[str, Any]", _raw(info).variable_values)
    values = {arg.name.value: value_from_ast_untyped(arg.value, variables)
              for arg in field.arguments or ()}
    # A variable the request did not send leaves its argument unset, as if it were not written.
    return {name: value for name, value in values.items() if value is not Undefined}
