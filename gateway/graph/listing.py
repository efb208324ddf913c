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
from gateway.shared import gather
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

    def __init__(self, source: str, load: Callable[[], Awaitable[Sequence[T]]]) -> None:
        self.source = source
        self._load = load
        self._items: Sequence[T] | None = None

    @property
    def known_total(self) -> int | None:
        return None if self._items is None else len(self._items)

    async def items(self) -> Sequence[T]:
        if self._items is None:
            self._items = await self._load()
        return self._items

    async def window(self, window: Window) -> Page[T]:
        items = await self.items()
        return Page(list(items[window.offset: window.end]), len(items))

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
    totals = await gather(*(_guard(report, s.total) for s in streams))
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
    totals = await gather(*(_guard(report, s.total) for s in streams))
    return None if any(t is None for t in totals) else sum(t or 0 for t in totals)


async def merged(streams: Sequence[ListStream[T]], key: Callable[[T], Any], descending: bool,
                 args: PageArgs, fp: Fingerprint, report: ErrorSink) -> Listing[T]:
    """A page of the streams merged by ``key`` (``descending``: largest first; ties in stream
    order), each stream's items already in that order (within a stream, ties as it holds them).

    A k-way merge that reads only the page's items and one more per stream: nothing is sorted
    here, and a page of 20 of a thousand items costs 20 steps, not a thousand.
    """
    bounds = _start(args, fp, len(streams))  # a cursor of another list: before any call
    loaded = await gather(*(_guard(report, s.items) for s in streams))
    lists = [items or [] for items in loaded]
    failed = {i for i, items in enumerate(loaded) if items is None}
    total = None if failed else sum(len(items) for items in lists)
    walk = _MergeWalk(lists, key, descending, failed)
    if args.forward:
        return walk.forward(bounds or (0,) * len(lists), args.size, fp, total,
                            has_previous=bounds is not None and any(o != 0 for o in bounds))
    return walk.backward(bounds or (END,) * len(lists), args.size, fp, total,
                         after_cursor=bounds is not None)


class _MergeWalk(Generic[T]):
    """The merge of sorted streams from a start (forward) or an end (backward), with each
    item's cursor: per stream, how many of its items sort before the item.

    Offsets never go back past where the page started (forward) or beyond where it ended
    (backward), so no item repeats after a failed stream comes back; a failed stream keeps the
    offset the page started from, so the next page resumes it.
    """

    def __init__(self, lists: list[Sequence[T]], key: Callable[[T], Any], descending: bool,
                 failed: set[int]) -> None:
        self.lists = lists
        self.key = key
        self.descending = descending
        self.failed = failed

    def forward(self, start: tuple[int, ...], size: int, fp: Fingerprint, total: int | None,
                *, has_previous: bool) -> Listing[T]:
        lists, key = self.lists, self.key
        position = [len(items) if o == END or i in self.failed else min(o, len(items))
                    for i, (items, o) in enumerate(zip(lists, start, strict=True))]
        heads: list[Any] = [key(items[p]) if p < len(items) else None
                            for items, p in zip(lists, position, strict=True)]
        edges: list[tuple[T, Cursor]] = []
        while len(edges) < size:
            best = self._choose(heads, last=False)
            if best < 0:
                break
            item = lists[best][position[best]]
            offsets = [self._offset_before(j, start[j], position[j], item, best)
                       for j in range(len(lists))]
            offsets[best] = position[best]
            edges.append((item, Cursor(fp.value, best, tuple(offsets))))
            position[best] += 1
            items = lists[best]
            heads[best] = key(items[position[best]]) if position[best] < len(items) else None
        has_next = bool(self.failed) or any(p < len(items) for items, p in
                                            zip(lists, position, strict=True))
        return Listing.of_edges(edges, total, has_previous, has_next)

    def backward(self, end: tuple[int, ...], size: int, fp: Fingerprint, total: int | None,
                 *, after_cursor: bool) -> Listing[T]:
        lists, key = self.lists, self.key
        # position[i]: how many of stream i's items are still before the walk (it goes back).
        position = [0 if i in self.failed else len(items) if o == END else min(o, len(items))
                    for i, (items, o) in enumerate(zip(lists, end, strict=True))]
        heads: list[Any] = [key(items[p - 1]) if p > 0 else None
                            for items, p in zip(lists, position, strict=True)]
        taken: list[tuple[T, int, list[int]]] = []
        while len(taken) < size:
            best = self._choose(heads, last=True)
            if best < 0:
                break
            position[best] -= 1
            items = lists[best]
            taken.append((items[position[best]], best, list(position)))
            heads[best] = key(items[position[best] - 1]) if position[best] > 0 else None
        edges = []
        for item, stream, before in reversed(taken):
            # Items of other streams before this one: what the walk had not yet passed.
            offsets = [end[j] if j in self.failed else before[j] for j in range(len(lists))]
            edges.append((item, Cursor(fp.value, stream, tuple(offsets))))
        has_previous = any(position)
        return Listing.of_edges(edges, total, has_previous, after_cursor and bool(edges))

    def _offset_before(self, stream: int, start: int, position: int, item: T, of: int) -> int:
        """How many of ``stream``'s items a forward page's cursor puts before ``item`` (of
        stream ``of``): where the walk stands in it, never before the page's start; a failed
        stream keeps its start."""
        if stream in self.failed:
            return start
        if start != END:
            return max(position, start)
        # A stream the cursor had passed whole (END): count its items before the item.
        key, before = self.key(item), 0
        for other in self.lists[stream]:
            other_key = self.key(other)
            if not (self._before(other_key, key) or (other_key == key and stream < of)):
                break
            before += 1
        return before

    def _before(self, a: Any, b: Any) -> bool:
        """Whether key ``a`` comes before key ``b`` in the order."""
        return bool(a > b) if self.descending else bool(a < b)

    def _choose(self, heads: list[Any], *, last: bool) -> int:
        """The stream whose head (its next item's key; None: nothing left) comes first in the
        order, ties to the earlier stream; with ``last`` the one whose head comes last, ties to
        the later stream. -1 when no stream has a head."""
        best = -1
        for i, head in enumerate(heads):
            if head is None:
                continue
            # First: strictly before the best so far. Last: not before it (ties: the later).
            ahead = self._before(head, heads[best]) if best >= 0 else True
            if best < 0 or (not ahead if last else ahead):
                best = i
        return best
