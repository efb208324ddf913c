"""Bounded per-process memos, for keys that come from clients or upstream answers: whatever
arrives, the memo's size stays bounded.

:class:`BoundedDict` keeps at most ``max_entries`` items (oldest insertion out first), for memos of
small values. :class:`ByteBoundedLRU` keeps values whose sizes add up to at most ``max_bytes``
(least recently used out first), for memos whose values may be large: a byte bound holds however
large each value is, where an entry count holds only while values stay small; an
:class:`ExpiringLRU` is one whose values also expire.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BoundedDict", "ByteBoundedLRU", "ExpiringLRU"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(Generic[K, V]):
    """``get`` and ``put`` over at most ``max_entries`` keys (first in, first out)."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._items: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        if key not in self._items and len(self._items) >= self.max_entries:
            del self._items[next(iter(self._items))]
        self._items[key] = value


class ByteBoundedLRU(Generic[K, V]):
    """``get`` and ``put`` of values whose sizes add up to at most ``max_bytes``.

    The caller gives each value's size when it puts it (measured, or estimated from what the value
    was made of): ``put`` first makes room by dropping the least recently used values (``get``
    counts as a use). A value larger than the whole bound is not kept, and evicts nothing;
    ``max_bytes = 0`` keeps nothing. ``on_evict(key, value)`` hears of each value dropped to make
    room (not of those :meth:`pop` drops). Sizes of 1 make it an LRU bounded by count.
    """

    def __init__(self, max_bytes: int, *,
                 on_evict: Callable[[K, V], None] | None = None) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self.bytes = 0  # the sizes of the values kept, summed
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._on_evict = on_evict

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def keys(self) -> list[K]:
        """The keys kept, least recently used first."""
        return list(self._items)

    def items(self) -> list[tuple[K, V]]:
        """The keys and values kept, least recently used first."""
        return [(key, value) for key, (value, _) in self._items.items()]

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def peek(self, key: K) -> V | None:
        """The value of ``key``, without counting as a use."""
        item = self._items.get(key)
        return None if item is None else item[0]

    def put(self, key: K, value: V, nbytes: int) -> None:
        if nbytes < 0:
            raise ValueError("a size is never negative")
        self.pop(key)
        if nbytes > self.max_bytes:
            return
        while self.bytes + nbytes > self.max_bytes:
            evicted, (old, size) = self._items.popitem(last=False)
            self.bytes -= size
            if self._on_evict is not None:
                self._on_evict(evicted, old)
        self._items[key] = (value, nbytes)
        self.bytes += nbytes

    def pop(self, key: K) -> V | None:
        """Drop ``key``; its value, or None if it was not kept."""
        item = self._items.pop(key, None)
        if item is None:
            return None
        self.bytes -= item[1]
        return item[0]

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0


class ExpiringLRU(ByteBoundedLRU[K, tuple[V, float]]):
    """A :class:`ByteBoundedLRU` of values kept with the time they expire at (on whatever clock
    the caller reads): a value whose time has come is a miss, and leaves when read, or when
    room is needed (no timer per entry)."""

    def fresh(self, key: K, now: float) -> V | None:
        """The value of ``key`` unless it expired by ``now``."""
        entry = self.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if now >= expires_at:
            self.pop(key)
            return None
        return value

    def keep(self, key: K, value: V, expires_at: float, nbytes: int) -> None:
        self.put(key, (value, expires_at), nbytes)
