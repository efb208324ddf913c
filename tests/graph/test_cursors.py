"""Opaque versioned cursors, fingerprints and Relay argument validation."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.errors import BadUserInput, ErrorCode
from gateway.graph.cursors import (
    DEFAULT_PAGE_SIZE,
    END,
    MAX_PAGE_SIZE,
    Cursor,
    PageArgs,
    fingerprint,
)

PROPERTY = settings(max_examples=200, deadline=None)
FP = fingerprint("groups", ["s1", "s2"], None, None)
ARGUMENTS = pytest.mark.parametrize("argument", ["after", "before"])


def raw_cursor(payload: Any) -> str:
    """A cursor-shaped string around any JSON payload."""
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@st.composite
def cursors(draw: st.DrawFn) -> Cursor:
    offsets = draw(st.lists(st.integers(min_value=END, max_value=10**9), min_size=1, max_size=6))
    stream = draw(st.integers(min_value=0, max_value=len(offsets) - 1))
    fp = draw(st.one_of(st.just(FP), st.text(max_size=20)))
    return Cursor(fp, stream, tuple(offsets))


# -- encode / decode ----------------------------------------------------------------------------


@PROPERTY
@given(cursor=cursors(), argument=st.sampled_from(["after", "before"]))
def test_cursor_round_trips(cursor: Cursor, argument: str) -> None:
    value = cursor.encode()
    assert value.isascii()
    assert not set(value) & {"=", "+", "/"}  # URL-safe, unpadded
    decoded = Cursor.decode(
        value,
        argument=argument,
        expected_fingerprint=cursor.fingerprint,
        streams=len(cursor.offsets),
    )
    assert decoded == cursor


def expect_rejected(value: str, argument: str, *, streams: int = 2, fp: str = FP) -> str:
    with pytest.raises(BadUserInput) as info:
        Cursor.decode(value, argument=argument, expected_fingerprint=fp, streams=streams)
    assert info.value.code is ErrorCode.BAD_USER_INPUT
    assert f"`{argument}`" in info.value.message
    return info.value.message


@PROPERTY
@given(garbage=st.text(max_size=60), argument=st.sampled_from(["after", "before"]))
@example(garbage="", argument="after")
@example(garbage="not a cursor!", argument="before")
@example(garbage="é", argument="after")
def test_decode_rejects_garbage_text(garbage: str, argument: str) -> None:
    expect_rejected(garbage, argument)


@PROPERTY
@given(payload=st.binary(max_size=60), argument=st.sampled_from(["after", "before"]))
def test_decode_rejects_garbage_bytes(payload: bytes, argument: str) -> None:
    value = base64.urlsafe_b64encode(payload).decode("ascii")
    expect_rejected(value, argument)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)
numbers = st.one_of(st.integers(), st.floats())
cursor_shaped = st.tuples(
    st.just("1"), st.just(FP), numbers | json_values, st.lists(numbers, max_size=3) | json_values
).map(list)


@PROPERTY
@given(
    payload=st.one_of(json_values, cursor_shaped),
    argument=st.sampled_from(["after", "before"]),
)
@example(payload=["1", FP, float("inf"), []], argument="after")  # hypothesis' shrunk example
def test_decode_of_any_json_payload_is_a_cursor_or_bad_user_input(
    payload: Any, argument: str
) -> None:
    value = raw_cursor(payload)
    try:
        cursor = Cursor.decode(value, argument=argument, expected_fingerprint=FP, streams=2)
    except BadUserInput as exc:
        assert f"`{argument}`" in exc.message
    else:
        assert len(cursor.offsets) == 2 and 0 <= cursor.stream < 2


@ARGUMENTS
def test_decode_rejects_deeply_nested_json(argument: str) -> None:
    value = base64.urlsafe_b64encode(b"[" * 100_000).decode("ascii")
    expect_rejected(value, argument)


@ARGUMENTS
def test_decode_rejects_a_cursor_of_another_list(argument: str) -> None:
    value = Cursor(fingerprint("groups", ["s1"], None, None), 0, (3, 0)).encode()
    message = expect_rejected(value, argument)
    assert "other arguments" in message


@ARGUMENTS
@pytest.mark.parametrize("offsets", [(3,), (3, 0, 0), ()])
def test_decode_rejects_a_wrong_stream_count(argument: str, offsets: tuple[int, ...]) -> None:
    message = expect_rejected(Cursor(FP, 0, offsets).encode(), argument, streams=2)
    assert "not a cursor of this list" in message


@ARGUMENTS
@pytest.mark.parametrize("stream", [-1, 2, 7])
def test_decode_rejects_a_stream_index_out_of_range(argument: str, stream: int) -> None:
    expect_rejected(Cursor(FP, stream, (0, 0)).encode(), argument)


@ARGUMENTS
def test_decode_rejects_offsets_below_end(argument: str) -> None:
    expect_rejected(Cursor(FP, 0, (0, END - 1)).encode(), argument)


@ARGUMENTS
@pytest.mark.parametrize("version", ["0", "2", 1, None])
def test_decode_rejects_a_wrong_version(argument: str, version: Any) -> None:
    message = expect_rejected(raw_cursor([version, FP, 0, [0, 0]]), argument)
    assert "another API version" in message


@ARGUMENTS
@pytest.mark.parametrize(
    "payload",
    [
        ["1", FP, 0],
        ["1", FP, 0, [0, 0], "extra"],
        ["1", FP, "x", [0, 0]],
        ["1", FP, 0, [[0], 0]],
        ["1", FP, 0, None],
        {"v": 1},
        "1",
        17,
    ],
)
def test_decode_rejects_malformed_payloads(argument: str, payload: Any) -> None:
    expect_rejected(raw_cursor(payload), argument)


def test_decode_accepts_padding_and_its_absence() -> None:
    cursor = Cursor(FP, 1, (END, 5))
    value = cursor.encode()
    padded = value + "=" * (-len(value) % 4)
    for text in (value, padded):
        assert Cursor.decode(text, argument="after", expected_fingerprint=FP, streams=2) == cursor


# -- after() ------------------------------------------------------------------------------------


@PROPERTY
@given(cursor=cursors())
def test_after_advances_only_the_items_stream(cursor: Cursor) -> None:
    after = cursor.after()
    assert len(after) == len(cursor.offsets)
    for i, (old, new) in enumerate(zip(cursor.offsets, after, strict=True)):
        if i == cursor.stream and old != END:
            assert new == old + 1
        else:
            assert new == old


def test_after_examples() -> None:
    assert Cursor(FP, 1, (END, 3, 0)).after() == (END, 4, 0)
    assert Cursor(FP, 0, (0, 0)).after() == (1, 0)
    assert Cursor(FP, 0, (END, 2)).after() == (END, 2)


# -- fingerprint --------------------------------------------------------------------------------


def test_fingerprint_is_stable_and_tells_arguments_apart() -> None:
    assert fingerprint("groups", ["a"], {"x": 1, "y": 2}) == fingerprint(
        "groups", ["a"], {"y": 2, "x": 1}
    )
    assert fingerprint("groups", ["a"], None) != fingerprint("groups", ["b"], None)
    assert fingerprint("groups", ["a", "b"]) != fingerprint("groups", ["b", "a"])
    assert fingerprint("groups") != fingerprint("products")
    assert len(fingerprint("x")) == 12 and int(fingerprint("x"), 16) >= 0


# -- PageArgs -----------------------------------------------------------------------------------


def test_page_args_defaults_to_the_first_twenty() -> None:
    assert PageArgs.parse(None, None, None, None) == PageArgs(DEFAULT_PAGE_SIZE, True, None)
    assert DEFAULT_PAGE_SIZE == 20


def test_page_args_forward_and_backward() -> None:
    assert PageArgs.parse(5, "c", None, None) == PageArgs(5, True, "c")
    assert PageArgs.parse(None, "c", None, None) == PageArgs(20, True, "c")
    assert PageArgs.parse(None, None, 7, "c") == PageArgs(7, False, "c")
    assert PageArgs.parse(None, None, 7, None) == PageArgs(7, False, None)


def test_page_args_before_alone_is_the_last_twenty_backwards() -> None:
    assert PageArgs.parse(None, None, None, "c") == PageArgs(20, False, "c")


@given(size=st.integers(min_value=0, max_value=MAX_PAGE_SIZE))
def test_page_args_accepts_sizes_in_range(size: int) -> None:
    assert PageArgs.parse(size, None, None, None).size == size
    assert PageArgs.parse(None, None, size, None).size == size


@given(size=st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_PAGE_SIZE + 1)))
def test_page_args_rejects_sizes_out_of_range(size: int) -> None:
    with pytest.raises(BadUserInput, match="`first`"):
        PageArgs.parse(size, None, None, None)
    with pytest.raises(BadUserInput, match="`last`"):
        PageArgs.parse(None, None, size, None)


@pytest.mark.parametrize(
    ("first", "after", "last", "before"),
    [
        (5, None, 5, None),  # first + last
        (None, "a", None, "b"),  # after + before
        (5, "a", None, "b"),
        (None, "a", 5, None),  # last + after
        (5, None, None, "b"),  # first + before
        (101, None, None, None),
        (-1, None, None, None),
        (None, None, 101, None),
        (None, None, -1, "b"),
    ],
)
def test_page_args_rejects_conflicts(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> None:
    with pytest.raises(BadUserInput) as info:
        PageArgs.parse(first, after, last, before)
    assert info.value.code is ErrorCode.BAD_USER_INPUT
    assert "`" in info.value.message  # names an argument
