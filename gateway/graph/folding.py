"""The fold rule: when a list of product groups can carry each group's first products in its own
upstream call (Axim's ``productPage``/``productLimit``), instead of one call per group.

It holds when every group of the list asks its ``products`` the same way: the same arguments, a
first page (no ``after``, ``last`` or ``before``) of a valid size, and a search within bounds.
The resolver asks :func:`nested_page` with the arguments' values before it lists the groups
(:mod:`gateway.graph.resolvers`); the cost rule asks it with what it knows before the request
(:mod:`gateway.graph.cost`: a variable not known yet is an :class:`Unknown`: a page size never
folds, a search does, since a search too long is refused before any call), so the price and
the calls made agree by construction. Whether a source can carry the page (its most products per
group in one call) is the source's own declaration (``ReadCost.products_page``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.graph.cursors import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from gateway.graph.inputs import MAX_STRING_LENGTH

__all__ = ["NestedPage", "Unknown", "nested_page"]

NOT_FIRST_PAGE = ("after", "last", "before")


@dataclass(frozen=True, slots=True)
class Unknown:
    """An argument's value not known yet: a variable (equal to another use of the same one)."""

    text: str


@dataclass(frozen=True, slots=True)
class NestedPage:
    """The products page every group of a list asks for."""

    search: str | None
    size: int


def nested_page(calls: Sequence[Mapping[str, Any]]) -> NestedPage | None:
    """The page when every call (the arguments of each ``products`` field under the list's
    items) asks the same first page; None when they differ, there are none, or it is not a
    first page of a valid size (the nested field then reports what is wrong)."""
    if not calls or any(call != calls[0] for call in calls[1:]):
        return None
    call = calls[0]
    if any(call.get(name) is not None for name in NOT_FIRST_PAGE):
        return None
    first = call.get("first")
    if first is None:
        size = DEFAULT_PAGE_SIZE
    elif type(first) is int and 0 <= first <= MAX_PAGE_SIZE:
        size = first
    else:
        return None  # unknown yet, or out of range
    search = call.get("search")
    if isinstance(search, Unknown):  # any string folds; one over the bound is refused first
        return NestedPage(None, size)
    if search is not None and (not isinstance(search, str) or len(search) > MAX_STRING_LENGTH):
        return None
    return NestedPage(search, size)
