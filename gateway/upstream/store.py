"""Where cached upstream answers live: aiocache in memory, or Redis shared by every process.

Entries are bytes (``NullSerializer``): a small header with the time stored, then the body. The
store never fails a request: an unreachable Redis is a miss, logged once per failure.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from aiocache import RedisCache, SimpleMemoryCache
from aiocache.base import BaseCache
from aiocache.serializers import NullSerializer

__all__ = ["CachedAnswer", "ResponseStore"]

logger = logging.getLogger("gateway.cache")
FORMAT = b"cgw1"  # entry format; part of the key too


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    stored_at: float  # time.time() when fetched (wall clock: shared between processes)
    status: int
    content_type: str
    body: bytes

    def age(self) -> float:
        return max(0.0, time.time() - self.stored_at)

    def encode(self) -> bytes:
        head = f"{self.stored_at:.3f} {self.status} {self.content_type}".encode()
        return FORMAT + b" " + head + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> CachedAnswer | None:
        head, _, body = raw.partition(b"\n")
        parts = head.decode("latin-1").split(" ", 3)
        if len(parts) != 4 or parts[0] != FORMAT.decode():
            return None
        try:
            return cls(float(parts[1]), int(parts[2]), parts[3], body)
        except ValueError:
            return None


class ResponseStore:
    """Get and set :class:`CachedAnswer` by key, in memory or in Redis."""

    def __init__(self, url: str, *, namespace: str) -> None:
        self.url_kind = "redis" if url.startswith(("redis://", "rediss://")) else "memory"
        self._cache: BaseCache = _backend(url, f"{namespace}:")

    async def get(self, key: str) -> CachedAnswer | None:
        try:
            raw = await self._cache.get(key)
        except Exception as exc:  # a cache outage must not fail a request
            logger.warning("cache read failed: %s", type(exc).__name__)
            return None
        return CachedAnswer.decode(raw) if isinstance(raw, bytes) else None

    async def set(self, key: str, answer: CachedAnswer, ttl: float) -> None:
        try:
            await self._cache.set(key, answer.encode(), ttl=max(1, int(ttl + 0.999)))
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
