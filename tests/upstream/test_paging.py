"""Pure paging arithmetic (plan_pages, plan_offsets) and fetch_window over a scripted upstream."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.errors import UpstreamUnavailable
from gateway.upstream.paging import Slice, fetch_window, plan_offsets, plan_pages, read_all
from gateway.window import Page, Window

PROPERTY = settings(max_examples=250, deadline=None)

offsets = st.integers(min_value=0, max_value=10_000)
limits = st.integers(min_value=1, max_value=100)
max_sizes = st.one_of(st.sampled_from([50, 100, 250]), st.integers(min_value=1, max_value=30))


def pages_needed(window: Window, size: int) -> int:
    """How many aligned pages of ``size`` cover ``window`` (brute force reference)."""
    return (window.end - 1) // size - window.offset // size + 1


# -- plan_pages ---------------------------------------------------------------------------------


@PROPERTY
@given(offset=offsets, limit=limits, max_size=max_sizes)
def test_plan_pages_is_an_aligned_contiguous_minimal_cover(
    offset: int, limit: int, max_size: int
) -> None:
    window = Window(offset, limit)
    slices = plan_pages(window, max_size)

    assert slices
    size = slices[0].size
    assert 1 <= size <= max_size
    assert all(s.size == size for s in slices)
    assert all(s.start % size == 0 for s in slices)
    for before, after in itertools.pairwise(slices):
        assert after.start == before.start + before.size
        assert after.page == before.page + 1
    # Covers the window, and no page lies wholly outside it.
    assert slices[0].start <= window.offset < slices[0].start + size
    assert slices[-1].start < window.end <= slices[-1].start + size
    # Minimal: no allowed size covers the window with fewer pages.
    fewest = min(pages_needed(window, s) for s in range(1, max_size + 1))
    assert len(slices) == fewest
    # Among the fewest, the least over-fetch.
    least = min(fewest * s for s in range(1, max_size + 1) if pages_needed(window, s) == fewest)
    assert len(slices) * size == least


@given(offset=offsets, limit=st.integers(min_value=-5, max_value=0), max_size=max_sizes)
def test_plan_pages_of_an_empty_window_is_empty(offset: int, limit: int, max_size: int) -> None:
    assert plan_pages(Window(offset, limit), max_size) == []


@pytest.mark.parametrize(
    ("window", "max_size", "expected"),
    [
        (Window(0, 20), 50, [Slice(0, 20)]),
        (Window(45, 10), 50, [Slice(44, 11)]),  # the module's doctest
        (Window(95, 10), 100, [Slice(90, 15)]),
        (Window(0, 100), 50, [Slice(0, 50), Slice(50, 50)]),
        (Window(0, 250), 100, [Slice(0, 84), Slice(84, 84), Slice(168, 84)]),
        (Window(7, 1), 50, [Slice(7, 1)]),
        (Window(0, 1), 1, [Slice(0, 1)]),
        (Window(3, 3), 1, [Slice(3, 1), Slice(4, 1), Slice(5, 1)]),
    ],
)
def test_plan_pages_examples(window: Window, max_size: int, expected: list[Slice]) -> None:
    assert plan_pages(window, max_size) == expected


def test_plan_pages_window_95_10_is_one_request() -> None:
    (only,) = plan_pages(Window(95, 10), 100)
    assert only.start <= 95 and only.start + only.size >= 105
    assert only.page == only.start // only.size + 1


# -- plan_offsets -------------------------------------------------------------------------------


@PROPERTY
@given(
    offset=offsets,
    limit=st.integers(min_value=1, max_value=500),
    max_size=st.one_of(st.none(), st.integers(min_value=1, max_value=250)),
)
def test_plan_offsets_chunks_cover_the_window_exactly(
    offset: int, limit: int, max_size: int | None
) -> None:
    window = Window(offset, limit)
    slices = plan_offsets(window, max_size)

    assert slices
    assert slices[0].start == window.offset
    for before, after in itertools.pairwise(slices):
        assert after.start == before.start + before.size
    assert slices[-1].start + slices[-1].size == window.end
    assert all(s.size >= 1 for s in slices)
    if max_size is None:
        assert slices == [Slice(offset, limit)]
    else:
        assert all(s.size <= max_size for s in slices)
        assert len(slices) == -(-limit // max_size)  # the fewest chunks of at most max_size


@given(offset=offsets, limit=st.integers(min_value=-5, max_value=0))
def test_plan_offsets_of_an_empty_window_is_empty(offset: int, limit: int) -> None:
    assert plan_offsets(Window(offset, limit), None) == []
    assert plan_offsets(Window(offset, limit), 10) == []


def test_plan_offsets_examples() -> None:
    assert plan_offsets(Window(10, 25), 10) == [Slice(10, 10), Slice(20, 10), Slice(30, 5)]
    assert plan_offsets(Window(10, 25), None) == [Slice(10, 25)]


# -- fetch_window -------------------------------------------------------------------------------


@dataclass
class ScriptedUpstream:
    """An in-memory upstream with an optional hidden maximum page size (``clamp``).

    Page-aligned mode reads a request as (page, size) and pages in its own clamped size, so a
    clamped page ``p`` starts at ``(p - 1) * min(size, clamp)``; offset mode serves
    ``[start, start + min(size, clamp))``. ``reports_size``: the answer says the page size it
    applied, as Joptic's ``pagination.limit`` and Comestri's ``per_page`` do.
    """

    items: list[int]
    page_aligned: bool
    clamp: int | None = None
    reports_size: bool = False
    requests: list[Slice] = field(default_factory=list)

    async def fetch(self, piece: Slice) -> Page[int]:
        self.requests.append(piece)
        await asyncio.sleep(0)
        size = piece.size if self.clamp is None else min(piece.size, self.clamp)
        start = (piece.page - 1) * size if self.page_aligned else piece.start
        reported = size if self.reports_size else None
        return Page(self.items[start : start + size], len(self.items), reported)


def run_fetch(upstream: ScriptedUpstream, window: Window, max_size: int | None) -> Page[int]:
    return asyncio.run(
        fetch_window(window, upstream.fetch, max_size=max_size, page_aligned=upstream.page_aligned)
    )


clamps = st.one_of(st.none(), st.integers(min_value=1, max_value=120))
list_sizes = st.integers(min_value=0, max_value=400)


@PROPERTY
@given(
    n=list_sizes,
    offset=st.integers(min_value=0, max_value=450),
    limit=limits,
    max_size=st.sampled_from([50, 100]),
    clamp=clamps,
)
@example(n=2, offset=2, limit=2, max_size=50, clamp=1)  # hypothesis' shrunk example
@example(n=25, offset=20, limit=15, max_size=50, clamp=10)
def test_fetch_window_page_aligned_returns_exactly_the_window(
    n: int, offset: int, limit: int, max_size: int, clamp: int | None
) -> None:
    items = list(range(n))
    upstream = ScriptedUpstream(items, True, clamp, reports_size=True)
    result = run_fetch(upstream, Window(offset, limit), max_size)
    assert result.items == items[offset : offset + limit]
    assert result.total == n


@PROPERTY
@given(
    n=list_sizes,
    offset=st.integers(min_value=0, max_value=450),
    limit=limits,
    max_size=st.sampled_from([50, 100]),
    clamp=clamps,
)
def test_fetch_window_page_aligned_never_short_when_clamped_pages_stay_inside_the_list(
    n: int, offset: int, limit: int, max_size: int, clamp: int | None
) -> None:
    """The same property where the upstream's clamped pages never reach the list's end.

    (A list at least a full planned page longer than the window keeps clear of the bug above.)
    """
    items = list(range(n))
    plan = plan_pages(Window(offset, limit), max_size)
    if plan and plan[-1].start + plan[-1].size + max_size > n:
        n = plan[-1].start + plan[-1].size + max_size
        items = list(range(n))
    result = run_fetch(ScriptedUpstream(items, True, clamp), Window(offset, limit), max_size)
    assert result.items == items[offset : offset + limit]
    assert result.total == n


@PROPERTY
@given(
    n=list_sizes,
    offset=st.integers(min_value=0, max_value=450),
    limit=limits,
    max_size=st.one_of(st.none(), st.integers(min_value=1, max_value=120)),
    clamp=clamps,
)
def test_fetch_window_offset_mode_returns_exactly_the_window(
    n: int, offset: int, limit: int, max_size: int | None, clamp: int | None
) -> None:
    items = list(range(n))
    result = run_fetch(ScriptedUpstream(items, False, clamp), Window(offset, limit), max_size)
    assert result.items == items[offset : offset + limit]
    assert result.total == n


@PROPERTY
@given(
    n=list_sizes,
    offset=st.integers(min_value=0, max_value=400),
    limit=limits,
    max_size=st.sampled_from([50, 100]),
)
def test_fetch_window_page_aligned_without_clamp_makes_exactly_the_planned_requests(
    n: int, offset: int, limit: int, max_size: int
) -> None:
    n = max(n, offset + limit)  # the window lies within the list
    upstream = ScriptedUpstream(list(range(n)), True)
    window = Window(offset, limit)
    result = run_fetch(upstream, window, max_size)
    assert result.items == list(range(offset, offset + limit))
    assert sorted(upstream.requests, key=lambda s: s.start) == plan_pages(window, max_size)


@PROPERTY
@given(
    n=list_sizes,
    offset=st.integers(min_value=0, max_value=400),
    limit=limits,
    max_size=st.one_of(st.none(), st.integers(min_value=1, max_value=120)),
)
def test_fetch_window_offset_mode_without_clamp_makes_exactly_the_planned_requests(
    n: int, offset: int, limit: int, max_size: int | None
) -> None:
    n = max(n, offset + limit)
    upstream = ScriptedUpstream(list(range(n)), False)
    window = Window(offset, limit)
    run_fetch(upstream, window, max_size)
    assert sorted(upstream.requests, key=lambda s: s.start) == plan_offsets(window, max_size)


async def test_fetch_window_re_asks_in_the_clamped_size() -> None:
    upstream = ScriptedUpstream(list(range(200)), True, clamp=20)
    result = await fetch_window(Window(0, 100), upstream.fetch, max_size=50, page_aligned=True)
    assert result.items == list(range(100))
    assert result.total == 200
    # First round: two pages of 50 (the second untrusted); then pages of the observed 20.
    assert upstream.requests[:2] == [Slice(0, 50), Slice(50, 50)]
    assert all(s.size == 20 for s in upstream.requests[2:])


async def test_fetch_window_of_an_empty_list_or_past_the_end() -> None:
    empty = ScriptedUpstream([], True)
    assert await fetch_window(Window(0, 20), empty.fetch, max_size=50, page_aligned=True) == (
        Page([], 0)
    )
    short = ScriptedUpstream(list(range(10)), False)
    assert await fetch_window(Window(30, 5), short.fetch, max_size=None, page_aligned=False) == (
        Page([], 10)
    )


# -- read_all ------------------------------------------------------------------------------------


class GrowingList:
    """Newest first, as Joptic lists groups: a new item goes first before the requests
    numbered in ``grow_at`` are answered."""

    def __init__(self, size: int, grow_at: Iterable[int] = ()) -> None:
        self.items = list(range(size))
        self.grow_at = set(grow_at)
        self.requests = 0

    async def fetch(self, window: Window) -> Page[int]:
        self.requests += 1
        if self.requests in self.grow_at:
            self.items.insert(0, -self.requests)
        return Page(self.items[window.offset : window.end], len(self.items))


async def test_read_all_reads_a_list_in_two_calls() -> None:
    still = GrowingList(250)
    assert await read_all(still.fetch, 100, exact=True) == list(range(250))
    assert still.requests == 2


async def test_an_exact_read_all_reads_again_a_list_that_moved_between_its_calls() -> None:
    # The second call sees one item more: the last one is pushed out of the window it asks for.
    moved = GrowingList(250, grow_at=[2])
    # Item 99 comes twice, and the oldest, 249, not at all.
    assert await read_all(moved.fetch, 100) == [*range(100), *range(99, 249)]
    moved = GrowingList(250, grow_at=[2])
    assert await read_all(moved.fetch, 100, exact=True) == [-2, *range(250)]
    assert moved.requests == 4


async def test_an_exact_read_all_of_a_list_that_never_holds_still_fails_retryably() -> None:
    churning = GrowingList(250, grow_at=range(100))
    with pytest.raises(UpstreamUnavailable, match="changed during each of 3 reads") as raised:
        await read_all(churning.fetch, 100, exact=True)
    assert raised.value.retryable
    assert churning.requests == 6
