"""One list over many sources: per-source streams, cursors, and partial failure.

A list is made of *streams*, one per selected source, in configured source order:

* :class:`WindowStream` asks its upstream for offset windows (filter and order pushed down);
* :class:`ListStream` holds a source's whole (small) list in memory, filtered and ordered here.

Without an order the list is the streams one after another (:func:`concatenated`); with one it is
their merge by a sort key (:func:`merged`, over list streams only). A stream whose source fails
contributes no items and one error naming the source; its offset in the cursors stays where it
was, so the next page resumes it, and the total is unknown (None) rather than wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar

from gateway.errors import GatewayError
from gateway.graph.cursors import END, Cursor, Fingerprint, PageArgs
from gateway.window import Page, Window

__all__ = ["ErrorSink", "ListStream", "Listing", "Stream", "WindowStream", "concatenated",
           "merged"]

T = TypeVar("T")
R = TypeVar("R")
ErrorSink = Callable[[GatewayError], None]


class Stream(Protocol[T]):
    source: str

    @property
    def known_total(self) -> int | None:
        """The total, when it is known without a request (else None)."""

    async def window(self, window: Window) -> Page[T]: ...

    async def total(self) -> int: ...


class WindowStream(Generic[T]):
    """A source's list read window by window from its upstream."""

    def __init__(self, source: str, fetch: Callable[[Window], Awaitable[Page[T]]]) -> None:
        self.source = source
        self._fetch = fetch
        self._total: int | None = None

    @property
    def known_total(self) -> int | None:
        return self._total

    async def window(self, window: Window) -> Page[T]:
        page = await self._fetch(window)
        if page.total is not None:
            self._total = page.total
        return page

    async def total(self) -> int:
        if self._total is None:
            page = await self.window(Window(0, 1))  # the cheapest request that tells the total
            self._total = len(page.items) if page.total is None else page.total
        return self._total


class ListStream(Generic[T]):
    """A source's whole list, loaded once (a bounded scan) and sliced in memory."""

    def __init__(self, source: str, load: Callable[[], Awaitable[list[T]]]) -> None:
        self.source = source
        self._load = load
        self._items: list[T] | None = None

    @property
    def known_total(self) -> int | None:
        return None if self._items is None else len(self._items)

    async def items(self) -> list[T]:
        if self._items is None:
            self._items = await self._load()
        return self._items

    async def window(self, window: Window) -> Page[T]:
        items = await self.items()
        return Page(items[window.offset: window.end], len(items))

    async def total(self) -> int:
        return len(await self.items())


@dataclass
class Listing(Generic[T]):
    """A page of a list: items with their cursors, the list's total, and the page's neighbours.

    Cursors are made only when asked for (``edges``): a query that selects only ``nodes`` (a
    group's first products, twenty times a page) pays for none.
    """

    items: list[T]
    total: int | None
    has_previous: bool
    has_next: bool
    cursors: Callable[[], list[Cursor]]

    @classmethod
    def of_edges(cls, edges: list[tuple[T, Cursor]], total: int | None, has_previous: bool,
                 has_next: bool) -> Listing[T]:
        return cls([item for item, _ in edges], total, has_previous, has_next,
                   lambda: [cursor for _, cursor in edges])

    @cached_property
    def edges(self) -> list[tuple[T, Cursor]]:
        return list(zip(self.items, self.cursors(), strict=True))


async def _guard(report: ErrorSink, call: Callable[..., Awaitable[R]], *args: Any) -> R | None:
    """``call(*args)``'s result, or None after reporting a source's failure. It takes the call
    rather than its coroutine: a stream's page is one coroutine, not two."""
    try:
        return await call(*args)
    except GatewayError as exc:
        if exc.source is None:
            raise
        report(exc)
        return None


def _start(args: PageArgs, fp: Fingerprint, count: int) -> tuple[int, ...] | None:
    """The offsets the page starts after (forward) or ends before (backward), None: an end."""
    if args.cursor is None:
        return None
    cursor = args.cursor.check(argument=args.argument, expected_fingerprint=fp.value, streams=count)
    return cursor.after() if args.forward else cursor.offsets


async def concatenated(streams: Sequence[Stream[T]], args: PageArgs, fp: Fingerprint,
                       report: ErrorSink, *, need_total: bool) -> Listing[T]:
    """A page of the streams one after another."""
    bounds = _start(args, fp, len(streams))
    if args.forward:
        return await _concat_forward(streams, args.size, fp, bounds, report, need_total)
    return await _concat_backward(streams, args.size, fp, bounds, report)


def _concat_offsets(start: tuple[int, ...], failed: set[int], stream: int, position: int,
                    *, forward: bool = True) -> tuple[int, ...]:
    """An item's offsets in a concatenation: streams before it are done (END) unless they
    failed on this page (they keep their offset, to resume); streams after it keep where the
    page started (forward), or have nothing before it (backward)."""
    before = tuple(start[k] if k in failed else END for k in range(stream))
    after = start[stream + 1:] if forward else (0,) * (len(start) - stream - 1)
    return (*before, position, *after)


async def _concat_forward(streams: Sequence[Stream[T]], size: int, fp: Fingerprint,
                          start: tuple[int, ...] | None, report: ErrorSink,
                          need_total: bool) -> Listing[T]:
    count = len(streams)
    start = start or (0,) * count
    pages: list[Page[T] | None]
    if count == 1:
        # One stream (a group's products, twenty times a page): awaited as it is, no task.
        pages = [None if start[0] == END else await _guard(report, streams[0].window,
                                                              Window(start[0], size))]
    else:
        # Each stream still in play is asked for a whole page at once: one request per
        # source, all concurrent, however the page ends up split between them.
        pages = await asyncio.gather(*(
            _guard(report, s.window, Window(start[i], size)) if start[i] != END else _none()
            for i, s in enumerate(streams)))
    items: list[T] = []
    spans: list[tuple[int, int]] = []  # (stream, items taken) per page, for the cursors
    failed = {i for i, page in enumerate(pages) if page is None and start[i] != END}
    has_next = bool(failed)  # a failed stream resumes on the next page
    for i, page in enumerate(pages):
        if page is None:
            continue
        taken = page.items[: size - len(items)]
        items += taken
        spans.append((i, len(taken)))
        known = page.total - start[i] if page.total is not None else len(page.items)
        has_next = has_next or known > len(taken)
    total = None
    if need_total and not failed:
        total = await _total(streams, report)
    has_previous = any(o == END or o > 0 for o in start)
    begin = start

    def cursors() -> list[Cursor]:
        return [Cursor(fp.value, i, _concat_offsets(begin, failed, i, begin[i] + j))
                for i, taken in spans for j in range(taken)]

    return Listing(items, total, has_previous, has_next, cursors)


async def _none() -> None:
    return None


async def _concat_backward(streams: Sequence[Stream[T]], size: int, fp: Fingerprint,
                           end: tuple[int, ...] | None, report: ErrorSink) -> Listing[T]:
    count = len(streams)
    end = end or (END,) * count
    # `last` counts from each source's total: one cheap request per source, never a scan.
    totals = await asyncio.gather(*(_guard(report, s.total) for s in streams))
    edges: list[tuple[T, Cursor]] = []
    first_position: tuple[int, int] | None = None
    for i in range(count - 1, -1, -1):
        stop = totals[i] if end[i] == END else end[i]
        if stop is None or stop <= 0 or len(edges) == size:
            continue
        need = size - len(edges)
        window = Window(max(0, stop - need), min(need, stop))
        page = await _guard(report, streams[i].window, window)
        if page is None:
            continue
        edges[:0] = [(item, Cursor(fp.value, i, _concat_offsets(end, set(), i, window.offset + j,
                                                               forward=False)))
                     for j, item in enumerate(page.items)]
        first_position = (i, window.offset)
    has_previous = False
    if first_position is not None:
        i, offset = first_position
        has_previous = offset > 0 or any((t or 0) > 0 for t in totals[:i])
    total = None if any(t is None for t in totals) else sum(t or 0 for t in totals)
    return Listing.of_edges(edges, total, has_previous,
                            any(o != END for o in end) and bool(edges))


async def _total(streams: Sequence[Stream[Any]], report: ErrorSink) -> int | None:
    known = [s.known_total for s in streams]
    if None not in known:  # every stream read its total with its page: nothing to wait for
        return sum(t or 0 for t in known)
    calls = [_guard(report, s.total) for s in streams]
    totals = [await calls[0]] if len(calls) == 1 else await asyncio.gather(*calls)
    return None if any(t is None for t in totals) else sum(t or 0 for t in totals)


async def merged(streams: Sequence[ListStream[T]], sort: Callable[[list[T]], list[T]],
                 args: PageArgs, fp: Fingerprint, report: ErrorSink) -> Listing[T]:
    """A page of the streams merged in ``sort`` order (ties: stream order, as given to sort)."""
    loaded = await asyncio.gather(*(_guard(report, s.items) for s in streams))
    count = len(streams)
    ordered = _ranked(loaded, sort)
    total = None if any(items is None for items in loaded) else len(ordered)
    bounds = _start(args, fp, count)
    if args.forward:
        start = bounds or (0,) * count
        rest = [t for t in ordered if t[2] >= _limit(start[t[1]])]
        page = rest[: args.size]
        has_previous = any(o != 0 for o in start)
        has_next = len(rest) > len(page) or any(items is None for items in loaded)
        kept = start
    else:
        end = bounds or (END,) * count
        before = [t for t in ordered if t[2] < _limit(end[t[1]])]
        page = before[max(0, len(before) - args.size):]
        has_previous, has_next = len(before) > len(page), bounds is not None and bool(page)
        kept = end
    failed = {i for i, items in enumerate(loaded) if items is None}
    edges = _merged_edges(page, ordered, fp, kept, failed, forward=args.forward)
    return Listing.of_edges(edges, total, has_previous, has_next)


def _ranked(loaded: Sequence[list[T] | None], sort: Callable[[list[T]], list[T]]
            ) -> list[tuple[T, int, int]]:
    """All items in sort order as (item, stream, rank of the item in its stream's sort order)."""
    stream_of = {id(item): i for i, items in enumerate(loaded) for item in items or ()}
    seen = [0] * len(loaded)
    ordered = []
    for item in sort([item for items in loaded for item in items or ()]):
        stream = stream_of[id(item)]
        ordered.append((item, stream, seen[stream]))
        seen[stream] += 1
    return ordered


def _limit(offset: int) -> float:
    return float("inf") if offset == END else offset


def _merged_edges(page: list[tuple[T, int, int]], ordered: list[tuple[T, int, int]],
                  fp: Fingerprint, bounds: tuple[int, ...], failed: set[int], *, forward: bool
                  ) -> list[tuple[T, Cursor]]:
    """Cursors for merged items: per stream, how many of its items sort before each one.

    Offsets never go back past where the page started (forward) or beyond where it ended
    (backward), so no item repeats after a failed stream comes back; a failed stream keeps the
    offset the page started from, so the next page resumes it.
    """
    on_page = {id(t[0]) for t in page}
    seen = [0] * len(bounds)
    edges: list[tuple[T, Cursor]] = []
    for item, stream, rank in ordered:
        if len(edges) == len(page):
            break
        if id(item) in on_page:
            offsets = [_bounded(seen[j], bounds[j], j in failed, forward)
                       for j in range(len(bounds))]
            offsets[stream] = rank
            edges.append((item, Cursor(fp.value, stream, tuple(offsets))))
        seen[stream] += 1
    return edges


def _bounded(seen: int, bound: int, failed: bool, forward: bool) -> int:
    if failed or bound == END:
        return bound if failed else seen
    return max(seen, bound) if forward else min(seen, bound)
