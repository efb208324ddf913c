"""A dict that keeps at most ``max_entries`` items, dropping the oldest insertion first.

For per-process memos whose keys come from clients or upstream answers: whatever arrives, the
memo's size stays bounded.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["BoundedDict"]

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
