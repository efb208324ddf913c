"""Relay arguments and opaque, versioned cursors over offset windows.

A cursor names one item's position in a list made of one or more per-source streams::

    base64url(["1", "<fingerprint>", <stream index>, [<offset per stream>...]])

The offsets say how many items of each stream come *before* the item (``END``: the whole stream
does, as for the sources before it in a concatenation). ``after: c`` starts at those offsets with
the item's own stream one further; ``before: c`` ends at them. The fingerprint hashes the list's
arguments (sources, filter, order, parent), so a cursor reused with other arguments is rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gateway.errors import BadUserInput

__all__ = ["DEFAULT_PAGE_SIZE", "END", "MAX_PAGE_SIZE", "Cursor", "PageArgs", "fingerprint"]

VERSION = "1"
END = -1
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 2048  # far above any cursor we emit; bounds the work on garbage


def fingerprint(*parts: Any) -> str:
    """A short, stable hash of a list's arguments."""
    raw = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.blake2b(raw, digest_size=6).hexdigest()


@dataclass(frozen=True, slots=True)
class Cursor:
    fingerprint: str
    stream: int  # index of the item's stream
    offsets: tuple[int, ...]  # items of each stream before the item (END: all of them)

    def encode(self) -> str:
        raw = json.dumps([VERSION, self.fingerprint, self.stream, list(self.offsets)],
                         separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, value: str, *, argument: str, expected_fingerprint: str,
               streams: int) -> Cursor:
        """Parse a client's cursor for a list of ``streams`` streams with these arguments."""
        try:
            if len(value) > MAX_CURSOR_LENGTH:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            version, fp, stream, offsets = json.loads(raw)
            cursor = cls(str(fp), int(stream), tuple(int(o) for o in offsets))
        except (binascii.Error, ValueError, TypeError, OverflowError, RecursionError):
            raise BadUserInput(f"`{argument}` is not a cursor of this API") from None
        if version != VERSION:
            raise BadUserInput(f"`{argument}` is a cursor of another API version: "
                               "start again from the first page")
        if cursor.fingerprint != expected_fingerprint:
            raise BadUserInput(f"`{argument}` belongs to a list with other arguments: a cursor "
                               "is valid only with the same filter, order and sources")
        if (len(cursor.offsets) != streams or not 0 <= cursor.stream < streams
                or any(o < END for o in cursor.offsets)):
            raise BadUserInput(f"`{argument}` is not a cursor of this list")
        return cursor

    def after(self) -> tuple[int, ...]:
        """Where a page after this item starts."""
        offsets = list(self.offsets)
        if offsets[self.stream] != END:
            offsets[self.stream] += 1
        return tuple(offsets)


@dataclass(frozen=True, slots=True)
class PageArgs:
    """Validated ``first/after/last/before``: a page goes forward (``first``) or back (``last``)."""

    size: int
    forward: bool
    cursor: str | None  # after (forward) or before (backward)

    @classmethod
    def parse(cls, first: int | None, after: str | None, last: int | None,
              before: str | None) -> PageArgs:
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
            return cls(last, False, before)
        return cls(DEFAULT_PAGE_SIZE if first is None else first, True, after)
