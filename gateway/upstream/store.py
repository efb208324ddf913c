"""Where cached upstream answers live: aiocache in memory, or Redis shared by every process.

Entries are bytes (``NullSerializer``): a small header with the time stored and the time the entry
expires (wall clock, from the store's :class:`~gateway.clock.Clock`: entries are shared between
processes), then the body. The store checks the expiry itself, so a test moves its clock instead
of waiting; the backend's own TTL only collects what expired. The store never fails a request: an
unreachable Redis is a miss, logged once per failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from aiocache import RedisCache, SimpleMemoryCache
from aiocache.base import BaseCache
from aiocache.serializers import NullSerializer

from gateway.clock import SYSTEM_CLOCK, Clock

__all__ = ["CachedAnswer", "ResponseStore"]

logger = logging.getLogger("gateway.cache")
FORMAT = b"cgw2"  # entry format; part of the key too


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


class ResponseStore:
    """Get and set :class:`CachedAnswer` by key, in memory or in Redis."""

    def __init__(self, url: str, *, namespace: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.url_kind = "redis" if url.startswith(("redis://", "rediss://")) else "memory"
        self._cache: BaseCache = _backend(url, f"{namespace}:")

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
        client = getattr(self._cache, "client", None)  # Redis: aiocache would call close()
        if client is not None:
            await client.aclose()
        else:
            await self._cache.close()


def _backend(url: str, namespace: str) -> BaseCache:
    if not url.startswith(("redis://", "rediss://")):
        return SimpleMemoryCache(serializer=NullSerializer(encoding=None), namespace=namespace)
    parts = urlsplit(url)
    db = parts.path.strip("/") or "0"
    return RedisCache(
        serializer=NullSerializer(encoding=None), namespace=namespace,
        endpoint=parts.hostname or "127.0.0.1", port=parts.port or 6379, db=int(db),
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss", create_connection_timeout=2,
    )
