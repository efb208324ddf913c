"""One list over many streams: paging forward and back, merging, and partial failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.errors import ErrorCode, GatewayError, UpstreamUnavailable
from gateway.graph.cursors import Cursor, CursorCodec, Fingerprint, PageArgs
from gateway.graph.listing import (
    ErrorSink,
    Listing,
    ListStream,
    Stream,
    WindowStream,
    concatenated,
    merged,
)
from gateway.window import Page, Window

PROPERTY = settings(max_examples=150, deadline=None)
FP = Fingerprint("test-list")
CODEC = CursorCodec("test-listing-cursor-secret")


def wire(cursor: Cursor) -> Cursor:
    """The cursor as the next request reads it, after a round trip through a client."""
    return CODEC.decode(CODEC.encode(cursor), argument="after")

Item = tuple[int, int, str]  # (stream, index in its stream, sort name)
Call = Callable[[PageArgs, ErrorSink], Awaitable[Listing[Item]]]


@dataclass
class Source:
    """An in-memory source that counts its upstream calls and can be taken down."""

    name: str
    items: list[Item]
    kind: str = "window"  # "window": WindowStream, "list": ListStream
    down: bool = False
    fetches: int = 0

    async def _call(self) -> None:
        self.fetches += 1
        await asyncio.sleep(0)
        if self.down:
            raise UpstreamUnavailable("x", source=self.name)

    async def _window(self, window: Window) -> Page[Item]:
        await self._call()
        return Page(self.items[window.offset : window.end], len(self.items))

    async def _load(self) -> list[Item]:
        await self._call()
        return list(self.items)

    def stream(self) -> Stream[Item]:
        if self.kind == "window":
            return WindowStream(self.name, self._window)
        return ListStream(self.name, self._load)

    def list_stream(self) -> ListStream[Item]:
        return ListStream(self.name, self._load)


def make_sources(names: list[list[str]], kinds: list[str] | None = None) -> list[Source]:
    kinds = kinds or ["window"] * len(names)
    return [
        Source(f"s{s}", [(s, i, name) for i, name in enumerate(stream)], kind)
        for s, (stream, kind) in enumerate(zip(names, kinds, strict=False))
    ]


def by_name(items: list[Item], *, descending: bool = False) -> list[Item]:
    # Stable: ties keep stream, then index order, in both directions.
    return sorted(items, key=name_of, reverse=descending)


def name_of(item: Item) -> str:
    return item[2]


def concat_call(sources: list[Source], *, need_total: bool) -> Call:
    async def call(args: PageArgs, report: ErrorSink) -> Listing[Item]:
        streams = [s.stream() for s in sources]  # fresh per request, as the resolvers do
        return await concatenated(streams, args, FP, report, need_total=need_total)

    return call


def merged_call(sources: list[Source], *, descending: bool = False) -> Call:
    """Each stream in its own order (as a source's kept table is), merged by name."""
    def in_order(source: Source) -> ListStream[Item]:
        async def load() -> list[Item]:
            return by_name(await source._load(), descending=descending)

        return ListStream(source.name, load)

    async def call(args: PageArgs, report: ErrorSink) -> Listing[Item]:
        return await merged([in_order(s) for s in sources], name_of, descending, args, FP,
                            report)

    return call


def items_of(listing: Listing[Item]) -> list[Item]:
    return [item for item, _ in listing.edges]


async def walk(call: Call, size: int, *, forward: bool, total: int) -> list[Listing[Item]]:
    """Every page from one end to the other, each page checked on its own as it comes."""
    pages: list[Listing[Item]] = []
    cursor: Cursor | None = None
    for _ in range(total // max(size, 1) + 3):
        errors: list[GatewayError] = []
        listing = await call(PageArgs(size, forward, cursor), errors.append)
        assert errors == []
        assert len(listing.edges) <= size
        pages.append(listing)
        more = listing.has_next if forward else listing.has_previous
        if not more:
            return pages
        assert len(listing.edges) == size  # a page is full while more items exist
        cursor = wire(listing.edges[-1 if forward else 0][1])
    raise AssertionError("paging did not reach the end")


stream_names = st.lists(st.lists(st.sampled_from("abcde"), max_size=60), min_size=1, max_size=4)
page_sizes = st.integers(min_value=1, max_value=25)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[list[str]], list[str]]:
    names = draw(stream_names)
    kinds = draw(
        st.lists(st.sampled_from(["window", "list"]), min_size=len(names), max_size=len(names))
    )
    return names, kinds


# -- concatenated -------------------------------------------------------------------------------


@PROPERTY
@given(layout=layouts(), size=page_sizes, need_total=st.booleans())
async def test_concatenated_forward_visits_every_item_once_in_order(
    layout: tuple[list[list[str]], list[str]], size: int, need_total: bool
) -> None:
    sources = make_sources(*layout)
    expected = [item for s in sources for item in s.items]
    call = concat_call(sources, need_total=need_total)
    counted = counting(call, sources, at_most=1)

    pages = await walk(counted, size, forward=True, total=len(expected))

    assert [item for page in pages for item in items_of(page)] == expected
    assert len(pages) == max(1, -(-len(expected) // size))
    assert all(page.edges for page in pages) or expected == []
    assert [page.has_previous for page in pages] == [False] + [True] * (len(pages) - 1)
    assert [page.has_next for page in pages] == [True] * (len(pages) - 1) + [False]
    for page in pages:
        assert page.total == (len(expected) if need_total else None)
    # `last` before a page's first item is the page before it.
    for k in range(1, len(pages)):
        before = wire(pages[k].edges[0][1])
        back = await call(PageArgs(size, False, before), fail_on_report)
        assert items_of(back) == items_of(pages[k - 1])
        assert back.has_previous == (k > 1)


@PROPERTY
@given(layout=layouts(), size=page_sizes)
async def test_concatenated_backward_from_the_end_visits_the_same_items_reversed(
    layout: tuple[list[list[str]], list[str]], size: int
) -> None:
    sources = make_sources(*layout)
    expected = [item for s in sources for item in s.items]
    call = counting(concat_call(sources, need_total=False), sources, at_most=2)

    pages = await walk(call, size, forward=False, total=len(expected))

    assert [item for page in reversed(pages) for item in items_of(page)] == expected
    assert len(pages) == max(1, -(-len(expected) // size))
    assert all(page.edges for page in pages) or expected == []
    assert [page.has_next for page in pages] == [False] + [True] * (len(pages) - 1)
    assert all(page.total == len(expected) for page in pages)


def fail_on_report(error: GatewayError) -> None:
    raise AssertionError(f"unexpected error {error!r}")


def counting(call: Call, sources: list[Source], *, at_most: int) -> Call:
    """The call, checking no source is asked more than ``at_most`` times per page."""

    async def counted(args: PageArgs, report: ErrorSink) -> Listing[Item]:
        for source in sources:
            source.fetches = 0
        listing = await call(args, report)
        assert all(source.fetches <= at_most for source in sources), [s.fetches for s in sources]
        return listing

    return counted


async def test_first_zero_is_an_empty_page() -> None:
    sources = make_sources([["a"] * 3])
    listing = await concat_call(sources, need_total=True)(PageArgs(0, True, None), fail_on_report)
    assert listing.edges == [] and listing.total == 3 and listing.has_next


async def test_concatenated_example_two_streams() -> None:
    sources = make_sources([["a"] * 3, ["b"] * 4])
    call = concat_call(sources, need_total=True)
    first = await call(PageArgs(5, True, None), fail_on_report)
    assert [(s, i) for s, i, _ in items_of(first)] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert (first.total, first.has_previous, first.has_next) == (7, False, True)
    second = await call(PageArgs(5, True, wire(first.edges[-1][1])), fail_on_report)
    assert [(s, i) for s, i, _ in items_of(second)] == [(1, 2), (1, 3)]
    assert (second.total, second.has_previous, second.has_next) == (7, True, False)


# -- merged -------------------------------------------------------------------------------------


async def check_merged(names: list[list[str]], size: int, *, descending: bool = False) -> None:
    sources = make_sources(names, ["list"] * len(names))
    expected = by_name([item for s in sources for item in s.items], descending=descending)
    call = merged_call(sources, descending=descending)

    forward = await walk(call, size, forward=True, total=len(expected))
    assert [item for page in forward for item in items_of(page)] == expected
    assert all(page.total == len(expected) for page in forward)
    assert [page.has_next for page in forward] == [True] * (len(forward) - 1) + [False]

    backward = await walk(call, size, forward=False, total=len(expected))
    assert [item for page in reversed(backward) for item in items_of(page)] == expected
    assert [page.has_next for page in backward] == [False] + [True] * (len(backward) - 1)


@PROPERTY
@given(names=stream_names, size=page_sizes)
async def test_merged_visits_every_item_once_in_sorted_order_when_streams_are_presorted(
    names: list[list[str]], size: int
) -> None:
    await check_merged([sorted(stream) for stream in names], size)


@PROPERTY
@given(names=stream_names, size=page_sizes)
@example(names=[["b", "a"]], size=1)  # regression: failed before e5e03f6 (b was never listed)
async def test_merged_visits_every_item_once_in_sorted_order(
    names: list[list[str]], size: int
) -> None:
    await check_merged(names, size)


@PROPERTY
@given(names=stream_names, size=page_sizes)
@example(names=[["a", "b"], ["b", "a"]], size=1)  # ties across streams: stream order
async def test_merged_descending_visits_every_item_once_ties_in_stream_order(
    names: list[list[str]], size: int
) -> None:
    await check_merged(names, size, descending=True)


# -- partial failure ----------------------------------------------------------------------------


@PROPERTY
@given(layout=layouts(), size=page_sizes, failing=st.integers(min_value=0, max_value=3))
async def test_a_failed_stream_contributes_nothing_and_is_reported_once(
    layout: tuple[list[list[str]], list[str]], size: int, failing: int
) -> None:
    sources = make_sources(*layout)
    failing %= len(sources)
    sources[failing].down = True
    errors: list[GatewayError] = []

    listing = await concat_call(sources, need_total=False)(
        PageArgs(size, True, None), errors.append
    )

    assert len(errors) == 1
    assert isinstance(errors[0], UpstreamUnavailable)
    assert errors[0].source == sources[failing].name
    assert errors[0].code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert all(item[0] != failing for item in items_of(listing))
    assert listing.total is None
    assert listing.has_next  # the failed stream resumes on a later page


@PROPERTY
@given(
    names=stream_names,
    size=page_sizes,
    failing=st.integers(min_value=0, max_value=3),
    outage=st.integers(min_value=0, max_value=3),
)
@example(names=[["a"]], size=1, failing=0, outage=0)  # hypothesis' shrunk example
@example(names=[["a"], ["b"]], size=5, failing=0, outage=0)
async def test_merged_failed_stream_is_reported_once_and_resumed(
    names: list[list[str]], size: int, failing: int, outage: int
) -> None:
    sources = make_sources(names, ["list"] * len(names))
    expected = by_name([item for s in sources for item in s.items])
    failing %= len(sources)
    visited = await walk_through_outage(
        merged_call(sources), sources, failing, outage, size, len(expected), need_total=True
    )
    assert sorted(visited) == sorted(expected)


async def walk_through_outage(
    call: Call,
    sources: list[Source],
    failing: int,
    outage: int,
    size: int,
    total: int,
    *,
    need_total: bool,
) -> list[Item]:
    """Pages forward with ``failing`` down for page ``outage`` only; the items seen."""
    visited: list[Item] = []
    cursor: Cursor | None = None
    for number in range(total // size + 8):
        sources[failing].down = number == outage
        errors: list[GatewayError] = []
        listing = await call(PageArgs(size, True, cursor), errors.append)
        sources[failing].down = False
        if number == outage:
            # A stream already done (its cursor offset is END) is not asked, so cannot fail.
            assert [e.source for e in errors] in ([sources[failing].name], [])
            if need_total and errors:
                assert listing.total is None
            assert all(item[0] != failing for item in items_of(listing))
        else:
            assert errors == []
        visited += items_of(listing)
        if not listing.has_next:
            return visited
        if listing.edges:
            cursor = wire(listing.edges[-1][1])
    raise AssertionError("paging did not reach the end")


@PROPERTY
@given(
    layout=layouts(),
    size=page_sizes,
    failing=st.integers(min_value=0, max_value=3),
    outage=st.integers(min_value=0, max_value=3),
)
@example(layout=([["a"], ["a"]], ["window", "window"]), size=1, failing=0, outage=0)
async def test_concatenated_resumes_a_failed_stream_from_the_last_cursor(
    layout: tuple[list[list[str]], list[str]], size: int, failing: int, outage: int
) -> None:
    sources = make_sources(*layout)
    expected = [item for s in sources for item in s.items]
    failing %= len(sources)
    visited = await walk_through_outage(
        concat_call(sources, need_total=False),
        sources,
        failing,
        outage,
        size,
        len(expected),
        need_total=False,
    )
    assert sorted(visited) == sorted(expected)  # every item exactly once


async def test_concatenated_resumes_a_failed_last_stream() -> None:
    sources = make_sources([["a"] * 5, ["b"] * 5])
    call = concat_call(sources, need_total=False)
    first = await call(PageArgs(3, True, None), fail_on_report)
    sources[1].down = True
    errors: list[GatewayError] = []
    second = await call(PageArgs(3, True, wire(first.edges[-1][1])), errors.append)
    assert [e.source for e in errors] == ["s1"]
    assert [(s, i) for s, i, _ in items_of(second)] == [(0, 3), (0, 4)]
    assert second.has_next and second.total is None
    sources[1].down = False
    third = await call(PageArgs(3, True, wire(second.edges[-1][1])), fail_on_report)
    assert [(s, i) for s, i, _ in items_of(third)] == [(1, 0), (1, 1), (1, 2)]


async def test_concatenated_resumes_a_failed_first_stream() -> None:
    sources = make_sources([["a"] * 2, ["b"] * 2])
    call = concat_call(sources, need_total=False)
    sources[0].down = True
    errors: list[GatewayError] = []
    first = await call(PageArgs(2, True, None), errors.append)
    assert [e.source for e in errors] == ["s0"]
    assert [(s, i) for s, i, _ in items_of(first)] == [(1, 0), (1, 1)]
    sources[0].down = False
    second = await call(PageArgs(2, True, wire(first.edges[-1][1])), fail_on_report)
    assert [(s, i) for s, i, _ in items_of(second)] == [(0, 0), (0, 1)]


@pytest.mark.parametrize("kind", ["window", "list"])
async def test_concatenated_with_total_reports_a_failed_stream_once(kind: str) -> None:
    sources = make_sources([["a"] * 3, ["b"] * 3], [kind, kind])
    sources[1].down = True
    errors: list[GatewayError] = []
    listing = await concat_call(sources, need_total=True)(PageArgs(5, True, None), errors.append)
    assert listing.total is None
    assert [e.source for e in errors] == ["s1"]


@pytest.mark.parametrize("kind", ["window", "list"])
async def test_concatenated_with_total_is_unknown_when_a_stream_fails(kind: str) -> None:
    sources = make_sources([["a"] * 3, ["b"] * 3], [kind, kind])
    sources[0].down = True
    errors: list[GatewayError] = []
    listing = await concat_call(sources, need_total=True)(PageArgs(5, True, None), errors.append)
    assert listing.total is None
    assert errors and {e.source for e in errors} == {"s0"}
    assert [(s, i) for s, i, _ in items_of(listing)] == [(1, 0), (1, 1), (1, 2)]
