"""Where cached upstream answers live: in this process's memory, or in Redis shared by processes.

Entries are bytes (``NullSerializer``): a small header with the time stored and the time the entry
expires (wall clock, from the store's :class:`~gateway.clock.Clock`: entries are shared between
processes), then the body. The store checks the expiry itself, so a test moves its clock instead
of waiting; the backend's own TTL only collects what expired. The store never fails a request: an
unreachable Redis is a miss, logged once per failure.

In memory, the entries' sizes add up to at most ``max_bytes`` (:class:`MemoryBackend`, least
recently used out first): a cache library's plain memory cache has no size bound, and clients choose
how many distinct answers there are. Redis is bounded by its own ``maxmemory``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from gateway.caches.bounded import ExpiringLRU
from gateway.caches.redis_client import RedisClient, as_cache, redis_client
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import DEFAULT_MEMORY_MAX_BYTES, CacheSettings, is_redis_url

__all__ = ["CachedAnswer", "MemoryBackend", "ResponseStore"]

logger = logging.getLogger("gateway.cache")
FORMAT = b"cgw2"  # entry format; part of the key too
# What an entry costs in memory besides its key's and value's characters: the str and bytes
# objects' headers (82 bytes) and the LRU's node, tuples and float (234 bytes, tracemalloc).
ENTRY_OVERHEAD = 320


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    stored_at: float  # clock.wall() when fetched (wall clock: shared between processes)
    status: int
    content_type: str
    body: bytes

    def age(self, now: float) -> float:
        return max(0.0, now - self.stored_at)

    def encode(self, expires_at: float) -> bytes:
        head = f"{self.stored_at:.3f} {expires_at:.3f} {self.status} {self.content_type}"
        return FORMAT + b" " + head.encode() + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> tuple[CachedAnswer, float] | None:
        """The answer and when its entry expires; None for an entry of another format."""
        head, _, body = raw.partition(b"\n")
        parts = head.decode("latin-1").split(" ", 4)
        if len(parts) != 5 or parts[0] != FORMAT.decode():
            return None
        try:
            return cls(float(parts[1]), int(parts[3]), parts[4], body), float(parts[2])
        except ValueError:
            return None


class _Backend(Protocol):
    """What the store needs of a backend."""

    async def get(self, key: str) -> object: ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> object: ...

    async def close(self) -> object: ...


class MemoryBackend:
    """Entries in this process, their sizes (key, value and :data:`ENTRY_OVERHEAD`) summing to at
    most ``max_bytes``, least recently used out first.

    The TTL is read on ``clock``: an expired entry is a miss and leaves when read, or when room
    is needed (no timer per entry).
    """

    def __init__(self, max_bytes: int, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.entries: ExpiringLRU[str, bytes] = ExpiringLRU(max_bytes)

    async def get(self, key: str) -> bytes | None:
        return self.entries.fresh(key, self.clock.wall())

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        expires_at = float("inf") if ttl is None else self.clock.wall() + ttl
        self.entries.keep(key, value, expires_at, len(key) + len(value) + ENTRY_OVERHEAD)

    async def close(self) -> None:
        self.entries.clear()


class RedisBackend:
    """Entries in Redis, each key after ``prefix`` (a single server, Sentinel's primary, or a
    cluster: :mod:`gateway.caches.redis_client`). Redis expires them itself."""

    def __init__(self, client: RedisClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def get(self, key: str) -> object:
        return await self.client.get(self.prefix + key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self.client.set(self.prefix + key, value,
                              ex=None if ttl is None else max(1, int(ttl)))

    async def close(self) -> None:
        await self.client.aclose()


class ResponseStore:
    """Get and set :class:`CachedAnswer` by key, in memory (at most ``memory_max_bytes``) or in
    Redis."""

    def __init__(self, cache: CacheSettings | str, *, namespace: str,
                 clock: Clock = SYSTEM_CLOCK,
                 memory_max_bytes: int = DEFAULT_MEMORY_MAX_BYTES) -> None:
        """``cache``: ``[cache]`` (or only its url)."""
        cache = as_cache(cache)
        self.clock = clock
        self.url_kind = "redis" if is_redis_url(cache.url) else "memory"
        self._cache: _Backend = (RedisBackend(redis_client(cache), f"{namespace}:")
                                 if self.url_kind == "redis"
                                 else MemoryBackend(memory_max_bytes, clock=clock))

    async def get(self, key: str) -> CachedAnswer | None:
        entry = await self.get_with_expiry(key)
        return None if entry is None else entry[0]

    async def get_with_expiry(self, key: str) -> tuple[CachedAnswer, float] | None:
        """The entry and when it expires (clock.wall()); None when absent or expired."""
        try:
            raw = await self._cache.get(key)
        except Exception as exc:  # a cache outage must not fail a request
            logger.warning("cache read failed: %s", type(exc).__name__)
            return None
        return self._unexpired(raw)

    def get_now(self, key: str) -> CachedAnswer | None:
        """:meth:`get` without awaiting, for entries this process holds (the memory store);
        None also where only awaiting can tell (Redis)."""
        if not isinstance(self._cache, MemoryBackend):
            return None
        entry = self._unexpired(self._cache.entries.fresh(key, self.clock.wall()))
        return None if entry is None else entry[0]

    def _unexpired(self, raw: object) -> tuple[CachedAnswer, float] | None:
        entry = CachedAnswer.decode(raw) if isinstance(raw, bytes) else None
        if entry is None or self.clock.wall() >= entry[1]:
            return None
        return entry

    async def set(self, key: str, answer: CachedAnswer, ttl: float) -> None:
        encoded = answer.encode(expires_at=self.clock.wall() + ttl)
        try:
            # The backend's TTL collects expired entries; a second more never serves them.
            await self._cache.set(key, encoded, ttl=max(1, int(ttl + 1.999)))
        except Exception as exc:
            logger.warning("cache write failed: %s", type(exc).__name__)

    async def close(self) -> None:
        await self._cache.close()
