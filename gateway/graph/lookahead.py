"""Reading ahead in the query: what a connection's items select, before resolving them.

Used to ask upstreams only for what is needed (Comestri's response fields), to count only when
``totalCount`` is asked, and to fetch Axim groups with their first product page in one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

__all__ = ["item_fields", "selected", "wants"]


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """Fields of a selection set, looking through fragments."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)


def selected(info: Info[Any, Any]) -> list[SelectedField]:
    """The fields selected on the current field's value."""
    return [f for field in info.selected_fields for f in _fields(field.selections)]


def wants(info: Info[Any, Any], name: str) -> bool:
    """Whether the current field's value selects ``name`` (a cheap walk of the query's AST,
    remembered per field for the request: every item of a list asks the same question)."""
    raw = info._raw_info
    memo: dict[Any, bool] = info.context.scope.memo
    key = ("wants", name, *(id(node) for node in raw.field_nodes))
    found = memo.get(key)
    if found is None:
        found = any(n == name for node in raw.field_nodes
                    for n in _names(node.selection_set, raw.fragments))
        memo[key] = found
    return found


def _names(selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
           ) -> Iterator[str]:
    """Field names of a selection set, looking through fragments."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _names(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _names(fragment.selection_set, fragments)


def item_fields(info: Info[Any, Any]) -> list[SelectedField]:
    """Fields selected on a connection's items, through ``nodes`` and ``edges { node }``."""
    found: list[SelectedField] = []
    for field in selected(info):
        if field.name == "nodes":
            found += _fields(field.selections)
        elif field.name == "edges":
            for edge_field in _fields(field.selections):
                if edge_field.name == "node":
                    found += _fields(edge_field.selections)
    return found
