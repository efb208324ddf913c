"""Paging: an offset window → the fewest upstream requests that cover it, and their answers.

Upstreams page in two dialects: ``page``/``limit`` (Joptic, Axim, Comestri) and ``offset``/``count``
(CareCloud). The GraphQL layer only speaks offset windows; these helpers translate.

    >>> plan_pages(Window(offset=45, limit=10), max_size=50)
    [Slice(start=44, size=11)]

:func:`fetch_window` runs a plan and stitches the answers. When an upstream returns fewer items than
asked while its total says more exist (an undocumented clamp), it asks again from where the answer
stopped with the smaller size it observed, so a page is never short when more items exist.
Adapters pass the page size an upstream reports (``Page.page_size``): a page-aligned upstream that
clamps serves other items than the page number implies, which only its own word reveals when the
short page is also the list's last. :func:`read_all` reads a whole list, as one snapshot where
asked to.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gateway.errors import UpstreamUnavailable
from gateway.shared import gather
from gateway.window import Page, Window

__all__ = ["Slice", "fetch_window", "plan_offsets", "plan_pages", "read_all"]

T = TypeVar("T")
MAX_ROUNDS = 8  # re-plans after short answers; bounds the work on a misbehaving upstream
EXACT_READS = 3  # whole reads of a list that changes while it is read, before giving up


@dataclass(frozen=True, slots=True)
class Slice:
    """What one upstream request asks for: items ``[start, start + size)``."""

    start: int
    size: int

    @property
    def page(self) -> int:
        """The 1-based page number, for page-aligned slices (``start`` a multiple of ``size``)."""
        return self.start // self.size + 1


def plan_pages(window: Window, max_size: int) -> list[Slice]:
    """The fewest same-size pages covering ``window``; among those, the least over-fetch."""
    return list(_planned_pages(window, max_size))


# A search over every page size: the same few windows are planned again and again (a table's
# pages, a first page of products), at 10-25 us each.
@functools.lru_cache(maxsize=1024)
def _planned_pages(window: Window, max_size: int) -> tuple[Slice, ...]:
    if window.limit <= 0:
        return ()
    best: tuple[tuple[int, int], int, int] | None = None
    for size in range(1, max_size + 1):
        first, last = window.offset // size, (window.end - 1) // size
        count = last - first + 1
        cost = (count, count * size)
        if best is None or cost < best[0]:
            best = (cost, size, first)
    assert best is not None
    (count, _), size, first = best
    return tuple(Slice((first + i) * size, size) for i in range(count))


def plan_offsets(window: Window, max_size: int | None) -> list[Slice]:
    """Offset/count requests covering ``window``, each at most ``max_size`` long."""
    if window.limit <= 0:
        return []
    step = window.limit if max_size is None else max_size
    return [
        Slice(start, min(step, window.end - start))
        for start in range(window.offset, window.end, step)
    ]


async def fetch_window(
    window: Window,
    fetch: Callable[[Slice], Awaitable[Page[T]]],
    *,
    max_size: int | None,
    page_aligned: bool,
) -> Page[T]:
    """Fetch ``window`` with concurrent requests; never short while the total says more exist."""
    items: list[T] = []
    total: int | None = None
    position = window.offset
    for _ in range(MAX_ROUNDS):
        remaining = Window(position, window.end - position)
        if total is not None:
            remaining = Window(position, min(remaining.limit, total - position))
        if remaining.limit <= 0:
            break
        if page_aligned:
            assert max_size is not None
            slices = plan_pages(remaining, max_size)
        else:
            slices = plan_offsets(remaining, max_size)
        chunks = await gather(*(fetch(s) for s in slices))
        got, total, observed = _stitch(remaining, slices, chunks, page_aligned)
        items.extend(got)
        position += len(got)
        if len(got) == remaining.limit or observed is None:
            break
        max_size = observed  # the upstream clamps below what we asked: ask in its size
    return Page(items, total)


def _stitch(
    window: Window, slices: Sequence[Slice], chunks: Sequence[Page[T]], page_aligned: bool
) -> tuple[list[T], int | None, int | None]:
    """The contiguous items of ``window`` the chunks cover, the total, and a clamp size seen.

    A chunk is *clamped* when it is short while the total says more items exist. A clamped page
    after the first holds other items than its number implies (the upstream paged in its own
    size), so its items are not trusted; an offset/count answer is always where it says.
    """
    items: list[T] = []
    total = next((c.total for c in reversed(chunks) if c.total is not None), None)
    position = window.offset
    for piece, chunk in zip(slices, chunks, strict=True):
        # The upstream's own word is exact; lacking it, a short page with more items to come.
        clamped = (chunk.page_size is not None and chunk.page_size < piece.size) or (
            total is not None
            and len(chunk.items) < piece.size
            and piece.start + len(chunk.items) < total
        )
        if not (clamped and page_aligned and piece.start > 0):
            taken = chunk.items[position - piece.start : window.end - piece.start]
            items.extend(taken)
            position += len(taken)
        if clamped:
            return items, total, chunk.page_size or len(chunk.items) or None
        if len(chunk.items) < piece.size:
            break  # the list ends here
    return items, total, None


async def read_all(
    fetch: Callable[[Window], Awaitable[Page[T]]],
    first_size: int,
    *,
    check_total: Callable[[int], None] | None = None,
    exact: bool = False,
) -> list[T]:
    """A whole list: one window of ``first_size`` learns the total, the rest comes in one more.

    ``check_total`` may refuse a total (by raising) before the rest is asked for.

    ``exact``: the list must be one snapshot, as a change-feed poll that compares it whole needs
    (a write between the two reads shifts an item past the boundary: it would read as deleted).
    The two reads must then agree on the total; while they do not, the list is read again, and
    :data:`EXACT_READS` reads that all disagree raise :class:`~gateway.errors.UpstreamUnavailable`
    (the poll is retried on its next turn). Without ``exact`` a disagreement is kept: cached
    answers of different ages would only disagree again.
    """
    for _ in range(EXACT_READS if exact else 1):
        first = await fetch(Window(0, first_size))
        total = len(first.items) if first.total is None else first.total
        if check_total is not None:
            check_total(total)
        if total <= len(first.items):
            return first.items
        rest = await fetch(Window(len(first.items), total - len(first.items)))
        if not exact or None in (first.total, rest.total) or first.total == rest.total:
            return first.items + rest.items
    raise UpstreamUnavailable(f"the list changed during each of {EXACT_READS} reads of it")
