"""Reading ahead in the query: what a connection's items select, before resolving them.

Used to ask upstreams only for what is needed (Comestri's response fields), to count only when
``totalCount`` is asked, and to fetch Axim groups with their first product page in one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

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
    return any(f.name == name for f in selected(info))


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
