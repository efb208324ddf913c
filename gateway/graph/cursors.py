"""Relay arguments and opaque, versioned, signed cursors over offset windows.

A cursor names one item's position in a list made of one or more per-source streams::

    base64url(["2", "<fingerprint>", <stream index>, [<offset per stream>...]])
    + "." + base64url(HMAC-SHA256(secret, <that JSON>)[:16])

The offsets say how many items of each stream come *before* the item (``END``: the whole stream
does, as for the sources before it in a concatenation). ``after: c`` starts at those offsets with
the item's own stream one further; ``before: c`` ends at them. The fingerprint hashes the list's
arguments (sources, filter, order, parent), so a cursor reused with other arguments is rejected.

Cursors are signed (:class:`CursorCodec`, with ``[server] cursor_secret``): a client can page
only from positions the gateway handed out, never ask a source for a page it chose (an offset of
``1e308`` once went upstream as a 300-digit page number). A forged or altered cursor is
``BAD_USER_INPUT`` (an invalid cursor); a cursor signed with one of ``previous_cursor_secrets``
still reads, so a secret can be rotated without breaking the cursors clients hold. Offsets are
integers of at most :data:`MAX_OFFSET` even when signed. This module is the one place cursors are
made and read. Ids (:mod:`gateway.ids`) are not signed: they stay stable and refetchable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import BadUserInput

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "END",
    "MAX_OFFSET",
    "MAX_PAGE_SIZE",
    "Cursor",
    "CursorCodec",
    "Fingerprint",
    "PageArgs",
    "fingerprint",
]

VERSION = "2"  # "1": unsigned cursors, no longer read
END = -1
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 2048  # far above any cursor we emit; bounds the work on garbage
# The largest offset a cursor may carry: far above any list a source serves (scan_limit is at
# most 100,000) and small enough that no upstream page number derived from it is absurd.
MAX_OFFSET = 10_000_000
TAG_BYTES = 16  # HMAC-SHA256 truncated to 128 bits (RFC 2104 §5)


def fingerprint(*parts: Any) -> str:
    """A short, stable hash of a list's arguments (orjson: every connection of a query has one,
    twenty for twenty groups' products, so it is worth a fast encoder)."""
    raw = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(raw, digest_size=6).hexdigest()


class Fingerprint:
    """A list's fingerprint, hashed only when a cursor is made or checked: a query selecting
    only ``nodes`` of twenty groups' products needs none of the twenty."""

    __slots__ = ("_parts", "_value")

    def __init__(self, *parts: Any) -> None:
        self._parts = parts
        self._value: str | None = None

    @property
    def value(self) -> str:
        if self._value is None:
            self._value = fingerprint(*self._parts)
        return self._value


@dataclass(frozen=True, slots=True)
class Cursor:
    fingerprint: str
    stream: int  # index of the item's stream
    offsets: tuple[int, ...]  # items of each stream before the item (END: all of them)

    def payload(self) -> bytes:
        return json.dumps([VERSION, self.fingerprint, self.stream, list(self.offsets)],
                          separators=(",", ":")).encode()

    def check(self, *, argument: str, expected_fingerprint: str, streams: int) -> Cursor:
        """This cursor, when it belongs to a list of ``streams`` streams with these arguments."""
        if self.fingerprint != expected_fingerprint:
            raise BadUserInput(f"`{argument}` belongs to a list with other arguments: a cursor "
                               "is valid only with the same filter, order and sources")
        if len(self.offsets) != streams or not 0 <= self.stream < streams:
            raise BadUserInput(f"`{argument}` is not a cursor of this list")
        return self

    def after(self) -> tuple[int, ...]:
        """Where a page after this item starts."""
        offsets = list(self.offsets)
        if offsets[self.stream] != END:
            offsets[self.stream] += 1
        return tuple(offsets)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Makes and reads the signed cursors of one deployment.

    ``secret`` signs; ``secret`` and then each of ``previous`` verify (rotation: the new secret
    first, the old ones kept until the cursors clients hold have aged out).
    """

    def __init__(self, secret: str | bytes, previous: Sequence[str | bytes] = ()) -> None:
        keys = [k.encode() if isinstance(k, str) else k for k in (secret, *previous)]
        self._signing = keys[0]
        self._verifying = tuple(keys)

    @classmethod
    def random(cls) -> CursorCodec:
        """A codec with a secret of this process only (cursors die with the process)."""
        return cls(secrets.token_bytes(32))

    def _tag(self, key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, payload, hashlib.sha256).digest()[:TAG_BYTES]

    def encode(self, cursor: Cursor) -> str:
        payload = cursor.payload()
        return f"{_b64(payload)}.{_b64(self._tag(self._signing, payload))}"

    def decode(self, value: str, *, argument: str) -> Cursor:
        """A client's cursor, signed by one of our secrets, with offsets in bounds."""
        invalid = BadUserInput(f"`{argument}` is an invalid cursor: pass a cursor this API "
                               "returned, unchanged")
        if len(value) > MAX_CURSOR_LENGTH or not value.isascii():
            raise invalid
        encoded, _, tag = value.partition(".")
        try:
            payload, signature = _unb64(encoded), _unb64(tag)
        except (binascii.Error, ValueError):
            raise invalid from None
        # Only the canonical spelling (padding aside): base64's unused low bits in a last
        # character would let another string carry the same bytes.
        if encoded.rstrip("=") != _b64(payload) or tag.rstrip("=") != _b64(signature):
            raise invalid
        # Constant-time comparison against each key: a forgery learns nothing from timing.
        if not any(hmac.compare_digest(self._tag(key, payload), signature)
                   for key in self._verifying):
            raise invalid
        return _parsed(payload, invalid, argument)


def _parsed(payload: bytes, invalid: BadUserInput, argument: str) -> Cursor:
    """The cursor a signed payload holds (signed by us, so malformed only across versions)."""
    try:
        version, fp, stream, offsets = json.loads(payload)
    except (ValueError, TypeError, RecursionError):
        raise invalid from None
    if version != VERSION:
        raise BadUserInput(f"`{argument}` is a cursor of another API version: "
                           "start again from the first page")
    if (not isinstance(fp, str) or not _is_int(stream) or not isinstance(offsets, list)
            or not all(_is_int(o) and END <= o <= MAX_OFFSET for o in offsets)):
        raise invalid
    return Cursor(fp, stream, tuple(offsets))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class PageArgs:
    """Validated ``first/after/last/before``: a page goes forward (``first``) or back (``last``)."""

    size: int
    forward: bool
    cursor: Cursor | None  # after (forward) or before (backward), verified

    @property
    def argument(self) -> str:
        """The argument the cursor came in: what an error about it names."""
        return "after" if self.forward else "before"

    @classmethod
    def parse(cls, first: int | None, after: str | None, last: int | None,
              before: str | None, *, cursors: CursorCodec) -> PageArgs:
        if first is not None and last is not None:
            raise BadUserInput("give `first` or `last`, not both")
        if after is not None and before is not None:
            raise BadUserInput("give `after` or `before`, not both")
        if last is None and before is not None and first is None:
            last = DEFAULT_PAGE_SIZE
        if first is not None and before is not None:
            raise BadUserInput("`before` pages backward: use it with `last`")
        if last is not None and after is not None:
            raise BadUserInput("`after` pages forward: use it with `first`")
        for name, value in (("first", first), ("last", last)):
            if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
                raise BadUserInput(f"`{name}` must be between 0 and {MAX_PAGE_SIZE}, got {value}")
        if last is not None:
            cursor = None if before is None else cursors.decode(before, argument="before")
            return cls(last, False, cursor)
        cursor = None if after is None else cursors.decode(after, argument="after")
        return cls(DEFAULT_PAGE_SIZE if first is None else first, True, cursor)
