"""Opaque, versioned, signed cursors, fingerprints and Relay argument validation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.errors import BadUserInput, ErrorCode
from gateway.graph.cursors import (
    DEFAULT_PAGE_SIZE,
    END,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    Cursor,
    CursorCodec,
    PageArgs,
    fingerprint,
)

PROPERTY = settings(max_examples=200, deadline=None)
FP = fingerprint("groups", ["s1", "s2"], None, None)
ARGUMENTS = pytest.mark.parametrize("argument", ["after", "before"])
SECRET = "test-cursor-secret-0123456789"
CODEC = CursorCodec(SECRET)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def signed(payload: Any, secret: str = SECRET) -> str:
    """A cursor-shaped string around any JSON payload, signed as the gateway signs (what only
    someone holding the secret could make)."""
    raw = json.dumps(payload).encode()
    tag = hmac.new(secret.encode(), raw, hashlib.sha256).digest()[:16]
    return f"{b64(raw)}.{b64(tag)}"


def read(value: str, argument: str = "after", *, streams: int = 2, fp: str = FP,
         codec: CursorCodec = CODEC) -> Cursor:
    """What a list does with a client's cursor: verify and parse it, then check it is its own."""
    return codec.decode(value, argument=argument).check(
        argument=argument, expected_fingerprint=fp, streams=streams)


@st.composite
def cursors(draw: st.DrawFn) -> Cursor:
    offsets = draw(st.lists(st.integers(min_value=END, max_value=MAX_OFFSET), min_size=1,
                            max_size=6))
    stream = draw(st.integers(min_value=0, max_value=len(offsets) - 1))
    fp = draw(st.one_of(st.just(FP), st.text(max_size=20)))
    return Cursor(fp, stream, tuple(offsets))


# -- encode / decode ----------------------------------------------------------------------------


@PROPERTY
@given(cursor=cursors(), argument=st.sampled_from(["after", "before"]))
def test_cursor_round_trips(cursor: Cursor, argument: str) -> None:
    value = CODEC.encode(cursor)
    assert value.isascii()
    assert not set(value) & {"=", "+", "/"}  # URL-safe, unpadded
    decoded = read(value, argument, streams=len(cursor.offsets), fp=cursor.fingerprint)
    assert decoded == cursor


def expect_rejected(value: str, argument: str, *, streams: int = 2, fp: str = FP,
                    codec: CursorCodec = CODEC) -> str:
    with pytest.raises(BadUserInput) as info:
        read(value, argument, streams=streams, fp=fp, codec=codec)
    assert info.value.code is ErrorCode.BAD_USER_INPUT
    assert f"`{argument}`" in info.value.message
    return info.value.message


@PROPERTY
@given(garbage=st.text(max_size=60), argument=st.sampled_from(["after", "before"]))
@example(garbage="", argument="after")
@example(garbage="not a cursor!", argument="before")
@example(garbage="é", argument="after")
@example(garbage=".", argument="after")
def test_decode_rejects_garbage_text(garbage: str, argument: str) -> None:
    assert "invalid cursor" in expect_rejected(garbage, argument)


@PROPERTY
@given(payload=st.binary(max_size=60), tag=st.binary(max_size=40),
       argument=st.sampled_from(["after", "before"]))
def test_decode_rejects_garbage_bytes(payload: bytes, tag: bytes, argument: str) -> None:
    assert "invalid cursor" in expect_rejected(f"{b64(payload)}.{b64(tag)}", argument)


# -- signatures ---------------------------------------------------------------------------------


@ARGUMENTS
def test_an_unsigned_cursor_of_the_old_format_is_invalid(argument: str) -> None:
    old = b64(json.dumps(["1", FP, 0, [1e308, 0]]).encode())  # what version 1 accepted
    assert "invalid cursor" in expect_rejected(old, argument)


@ARGUMENTS
def test_a_forged_cursor_is_invalid(argument: str) -> None:
    """Offsets of the client's choosing, signed with a secret the gateway does not hold."""
    forged = signed(["2", FP, 0, [10, 0]], secret="a-guess-at-the-secret-000")
    assert "invalid cursor" in expect_rejected(forged, argument)


@PROPERTY
@given(cursor=cursors(), position=st.integers(min_value=0), bit=st.integers(0, 5))
def test_any_tampered_character_makes_the_cursor_invalid(cursor: Cursor, position: int,
                                                         bit: int) -> None:
    value = CODEC.encode(cursor)
    position %= len(value)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if value[position] not in alphabet:
        return  # the separator
    changed = alphabet[alphabet.index(value[position]) ^ (1 << bit)]
    tampered = value[:position] + changed + value[position + 1:]
    with pytest.raises(BadUserInput, match="invalid cursor"):
        CODEC.decode(tampered, argument="after")


def test_a_cursor_signed_with_a_previous_secret_still_reads() -> None:
    cursor = Cursor(FP, 1, (END, 5))
    old = CursorCodec("the-secret-before-rotation").encode(cursor)
    rotated = CursorCodec("the-secret-after-rotation!", previous=["the-secret-before-rotation"])
    assert read(old, codec=rotated) == cursor
    new = rotated.encode(cursor)
    assert new != old and read(new, codec=rotated) == cursor
    # Signing uses the current secret only: a codec that dropped the old secret reads only new.
    assert read(new, codec=CursorCodec("the-secret-after-rotation!")) == cursor
    expect_rejected(old, "after", codec=CursorCodec("the-secret-after-rotation!"))


def test_a_random_codec_reads_only_its_own_cursors() -> None:
    one, two = CursorCodec.random(), CursorCodec.random()
    value = one.encode(Cursor(FP, 0, (0, 0)))
    assert read(value, codec=one) == Cursor(FP, 0, (0, 0))
    expect_rejected(value, "after", codec=two)


# -- what a signed payload may hold -------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)
numbers = st.one_of(st.integers(), st.floats())
cursor_shaped = st.tuples(
    st.just("2"), st.just(FP), numbers | json_values, st.lists(numbers, max_size=3) | json_values
).map(list)


@PROPERTY
@given(
    payload=st.one_of(json_values, cursor_shaped),
    argument=st.sampled_from(["after", "before"]),
)
@example(payload=["2", FP, float("inf"), []], argument="after")  # hypothesis' shrunk example
@example(payload=["2", FP, 0, [1e308, 0]], argument="after")
def test_decode_of_any_signed_payload_is_a_cursor_or_bad_user_input(
    payload: Any, argument: str
) -> None:
    try:
        cursor = read(signed(payload), argument)
    except BadUserInput as exc:
        assert f"`{argument}`" in exc.message
    else:
        assert len(cursor.offsets) == 2 and 0 <= cursor.stream < 2
        assert all(isinstance(o, int) and END <= o <= MAX_OFFSET for o in cursor.offsets)


@ARGUMENTS
def test_decode_rejects_deeply_nested_json(argument: str) -> None:
    def signed_raw(raw: bytes) -> str:
        return f"{b64(raw)}.{b64(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()[:16])}"

    expect_rejected(signed_raw(b"[" * 700 + b"]" * 700), argument)
    expect_rejected(signed_raw(b"[" * 100_000), argument)  # and far too long


@ARGUMENTS
def test_decode_rejects_a_cursor_of_another_list(argument: str) -> None:
    value = CODEC.encode(Cursor(fingerprint("groups", ["s1"], None, None), 0, (3, 0)))
    message = expect_rejected(value, argument)
    assert "other arguments" in message


@ARGUMENTS
@pytest.mark.parametrize("offsets", [(3,), (3, 0, 0), ()])
def test_decode_rejects_a_wrong_stream_count(argument: str, offsets: tuple[int, ...]) -> None:
    message = expect_rejected(CODEC.encode(Cursor(FP, 0, offsets)), argument, streams=2)
    assert "not a cursor of this list" in message


@ARGUMENTS
@pytest.mark.parametrize("stream", [-1, 2, 7])
def test_decode_rejects_a_stream_index_out_of_range(argument: str, stream: int) -> None:
    expect_rejected(CODEC.encode(Cursor(FP, stream, (0, 0))), argument)


@ARGUMENTS
@pytest.mark.parametrize("offset", [END - 1, MAX_OFFSET + 1, 10**300])
def test_decode_rejects_offsets_out_of_bounds_even_signed(argument: str, offset: int) -> None:
    expect_rejected(signed(["2", FP, 0, [0, offset]]), argument)


@ARGUMENTS
@pytest.mark.parametrize("offset", [1e308, 3.0, True, "5", None])
def test_decode_rejects_offsets_that_are_not_integers(argument: str, offset: Any) -> None:
    expect_rejected(signed(["2", FP, 0, [0, offset]]), argument)


@ARGUMENTS
@pytest.mark.parametrize("version", ["0", "1", "3", 2, None])
def test_decode_rejects_a_wrong_version(argument: str, version: Any) -> None:
    message = expect_rejected(signed([version, FP, 0, [0, 0]]), argument)
    assert "another API version" in message


@ARGUMENTS
@pytest.mark.parametrize(
    "payload",
    [
        ["2", FP, 0],
        ["2", FP, 0, [0, 0], "extra"],
        ["2", FP, "x", [0, 0]],
        ["2", FP, 0, [[0], 0]],
        ["2", FP, 0, None],
        ["2", 7, 0, [0, 0]],
        {"v": 1},
        "2",
        17,
    ],
)
def test_decode_rejects_malformed_payloads(argument: str, payload: Any) -> None:
    expect_rejected(signed(payload), argument)


def test_decode_accepts_padding_and_its_absence() -> None:
    cursor = Cursor(FP, 1, (END, 5))
    payload, tag = CODEC.encode(cursor).split(".")
    for part in (payload, tag):
        assert len(part) % 4  # unpadded: the test below pads
    padded = f"{payload}{'=' * (-len(payload) % 4)}.{tag}{'=' * (-len(tag) % 4)}"
    for text in (f"{payload}.{tag}", padded):
        assert read(text) == cursor


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


def parse(first: int | None, after: str | None, last: int | None, before: str | None
          ) -> PageArgs:
    return PageArgs.parse(first, after, last, before, cursors=CODEC)


C = CODEC.encode(Cursor(FP, 0, (5, 0)))  # a cursor the gateway made
DECODED = Cursor(FP, 0, (5, 0))


def test_page_args_defaults_to_the_first_twenty() -> None:
    assert parse(None, None, None, None) == PageArgs(DEFAULT_PAGE_SIZE, True, None)
    assert DEFAULT_PAGE_SIZE == 20


def test_page_args_forward_and_backward() -> None:
    assert parse(5, C, None, None) == PageArgs(5, True, DECODED)
    assert parse(None, C, None, None) == PageArgs(20, True, DECODED)
    assert parse(None, None, 7, C) == PageArgs(7, False, DECODED)
    assert parse(None, None, 7, None) == PageArgs(7, False, None)


@pytest.mark.parametrize(("first", "after", "last", "before", "argument"), [
    (5, "forged", None, None, "after"), (None, None, 5, "forged", "before")])
def test_page_args_refuse_an_invalid_cursor_naming_its_argument(
        first: int | None, after: str | None, last: int | None, before: str | None,
        argument: str) -> None:
    with pytest.raises(BadUserInput, match=f"`{argument}` is an invalid cursor"):
        parse(first, after, last, before)


def test_page_args_before_alone_is_the_last_twenty_backwards() -> None:
    assert parse(None, None, None, C) == PageArgs(20, False, DECODED)


@given(size=st.integers(min_value=0, max_value=MAX_PAGE_SIZE))
def test_page_args_accepts_sizes_in_range(size: int) -> None:
    assert parse(size, None, None, None).size == size
    assert parse(None, None, size, None).size == size


@given(size=st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_PAGE_SIZE + 1)))
def test_page_args_rejects_sizes_out_of_range(size: int) -> None:
    with pytest.raises(BadUserInput, match="`first`"):
        parse(size, None, None, None)
    with pytest.raises(BadUserInput, match="`last`"):
        parse(None, None, size, None)


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
        parse(first, after, last, before)
    assert info.value.code is ErrorCode.BAD_USER_INPUT
    assert "`" in info.value.message  # names an argument
