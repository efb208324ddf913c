"""The whole-response cache: a repeated query answered without parsing or executing anything.

Key: a SHA-256 over the entry format, the query text, the operation name, the variables in
canonical JSON (keys sorted), the client's language and the client's identity (empty until
clients authenticate). Value: the encoded answer and its ETag. An answer is kept for the
shortest remaining freshness of the upstream answers it was built from
(:attr:`gateway.scope.RequestScope.fresh_until`), at most ``max_ttl_seconds``; answers with
errors or stale data, mutations, and operations listed in ``exclude_operations`` are never kept.

Two tiers: an in-process memory tier bounded by bytes (least recently used out first), and,
when ``[cache] url`` names Redis, Redis behind it, shared by every gateway process.

Example::

    cache = ResponseCache(settings, clock=SYSTEM_CLOCK, shared=store)
    key = cache.key(query, "Q", {"first": 5}, language="en")
    hit = await cache.get(key)            # CachedResponse or None
    await cache.put(key, body, fresh_until=scope.fresh_until)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.caches.bounded import ByteBoundedLRU
from gateway.caches.store import CachedAnswer, ResponseStore
from gateway.clock import Clock
from gateway.config import ResponseCacheSettings

__all__ = ["CachedResponse", "ResponseCache"]

FORMAT = "rc1"  # entry format; part of every key
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class CachedResponse:
    body: bytes
    etag: str
    stored_at: float  # clock.wall()
    expires_at: float  # clock.wall()

    def max_age(self, now: float) -> int:
        return max(0, int(self.expires_at - now))


class ResponseCache:
    """Encoded answers by request key: memory first, then the shared store (Redis) if any."""

    def __init__(self, settings: ResponseCacheSettings, *, clock: Clock,
                 shared: ResponseStore | None = None, generation: str = "") -> None:
        self.settings = settings
        self.clock = clock
        self.shared = shared
        # Shared entries are keyed by the configuration too: after a reload, or between
        # processes configured differently, one's answers are not the other's.
        self._shared_prefix = f"{generation}:" if generation else ""
        self._memory: ByteBoundedLRU[str, CachedResponse] = ByteBoundedLRU(settings.max_bytes)
        self.stats = Counter[str]()  # hit, miss, stored, not stored

    @staticmethod
    def key(query: str, operation_name: str | None, variables: Mapping[str, Any] | None, *,
            language: str, client: str = "") -> str:
        canonical = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        parts = (FORMAT.encode(), query.encode(), (operation_name or "").encode(), canonical,
                 language.encode(), client.encode())
        # Length-prefixed: parts cannot shift into each other.
        framed = b"".join(len(part).to_bytes(8, "big") + part for part in parts)
        return f"{FORMAT}:{hashlib.sha256(framed).hexdigest()}"

    async def get(self, key: str) -> CachedResponse | None:
        now = self.clock.wall()
        found = self._memory.get(key)
        if found is not None:
            if found.expires_at > now:
                self.stats["hit"] += 1
                return found
            self._memory.pop(key)
        if self.shared is not None:
            shared = await self.shared.get_with_expiry(self._shared_prefix + key)
            if shared is not None:
                answer, expires_at = shared
                found = _entry(answer.body, answer.stored_at, expires_at)
                self._memory.put(key, found, len(found.body))
                self.stats["hit"] += 1
                return found
        self.stats["miss"] += 1
        return None

    async def put(self, key: str, body: bytes, *, fresh_until: float
                  ) -> CachedResponse | None:
        """Keep ``body`` until the upstream answers it came from stop being fresh; the entry,
        or None when it cannot be kept (fresh for less than a second, or too large)."""
        now = self.clock.wall()
        ttl = min(fresh_until - now, self.settings.max_ttl_seconds)
        if ttl < 1 or len(body) > self.settings.max_entry_bytes:
            self.stats["not stored"] += 1
            return None
        entry = _entry(body, now, now + ttl)
        self._memory.put(key, entry, len(body))
        if self.shared is not None:
            await self.shared.set(self._shared_prefix + key, CachedAnswer(now, 200, JSON, body),
                                  ttl)
        self.stats["stored"] += 1
        return entry


def _entry(body: bytes, stored_at: float, expires_at: float) -> CachedResponse:
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return CachedResponse(body, etag, stored_at, expires_at)
