"""The offset-window vocabulary the GraphQL layer, the adapters and the paging planner share.

A list is asked for by :class:`Window` (items ``[offset, offset + limit)``) and answered by a
:class:`Page`: the items from the window's start and the list's total when the upstream says it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Page", "Window"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Window:
    """Items ``[offset, offset + limit)`` of an ordered list."""

    offset: int
    limit: int

    @property
    def end(self) -> int:
        return self.offset + self.limit


@dataclass(slots=True)
class Page(Generic[T]):
    """Items of a list from some start, and the list's total length if the upstream gave one.

    ``page_size`` is the page size an upstream says it served, where it says (a clamp shows).
    """

    items: list[T] = field(default_factory=list)
    total: int | None = None
    page_size: int | None = None
