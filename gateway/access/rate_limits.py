"""Per-client rate limits and cost budgets per minute (``[rate_limits]``), with ``limits``.

Two fixed one-minute windows per client (its authenticated name, else its address):

* ``requests_per_minute``: every GraphQL request counts one, before anything else is done;
  past it, 429 ``RATE_LIMITED``;
* ``cost_per_minute``: upstream requests. A request is **admitted on its estimated cost**
  (:data:`CostEstimate`: refused with 429 ``COST_BUDGET_EXCEEDED`` when the estimate exceeds
  what is left of the window) and, after execution, **charged its actual upstream calls**
  (``RequestScope.upstream_requests``: distinct calls of the request, cached or not — the cost
  model's unit). A whole-response-cache hit runs nothing and is charged nothing.

And one per address, whoever it claims to be: ``failed_auth_per_minute`` failed
authentications (a bad API key or token, counted by :meth:`RateLimits.failed`); past them every
request from the address is refused with 429 ``RATE_LIMITED`` before its credentials are read
(:meth:`RateLimits.admit_attempt`), so keys cannot be guessed at speed. Its counters are keyed
``failed:<address>``, apart from the clients' (``address:…``, ``key:…``, ``jwt:…``).

All answer ``Retry-After``: the seconds until the window resets. Counters live in memory (per
process), or in the Redis of ``[cache] url`` so every gateway process shares them (limits'
async Redis storage over redis-py). A counter store that fails admits the request (logged):
rate limits must not take the gateway down with Redis.

Example::

    limits = RateLimits(config.rate_limits, cache="memory://", namespace="cgw")
    await limits.admit(client)                      # or RateLimited
    await limits.admit_cost(client, estimate=3)     # or RateLimited
    await limits.charge(client, scope.upstream_requests)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

from graphql import DocumentNode
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import (
    MemoryStorage,
    RedisClusterStorage,
    RedisSentinelStorage,
    RedisStorage,
    Storage,
)
from limits.aio.strategies import FixedWindowRateLimiter

from gateway.access.auth import Client
from gateway.caches.redis_client import as_cache, limits_storage
from gateway.config import CacheSettings, RateLimitSettings, is_redis_url
from gateway.errors import ErrorCode

__all__ = ["CostEstimate", "RateLimited", "RateLimits"]

logger = logging.getLogger("gateway.rate_limits")

# The estimated upstream requests of an operation: ``estimate(document, operation_name)`` (the
# cost rule's price, gateway/graph/cost.py).
CostEstimate = Callable[[DocumentNode, str | None], int]



class RateLimited(Exception):
    """Over a limit: 429 with ``code`` and ``Retry-After: retry_after``."""

    def __init__(self, code: ErrorCode, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


class RateLimits:
    def __init__(self, settings: RateLimitSettings, *, cache: CacheSettings | str,
                 namespace: str, previous: RateLimits | None = None) -> None:
        """``cache``: ``[cache]`` (or only its url): counters in memory, or in its Redis.
        ``previous``: the limits a reload replaces; their windows in memory go on here (in
        Redis they go on by themselves), so a reload never hands a client a fresh minute."""
        self.settings = settings
        cache = as_cache(cache)
        self._storage: Storage
        if is_redis_url(cache.url):
            self._storage = _redis_storage(cache, key_prefix=f"{namespace}:limits")
        elif previous is not None and isinstance(previous._storage, MemoryStorage):
            self._storage = previous._storage
        else:
            self._storage = MemoryStorage()
        self._limiter = FixedWindowRateLimiter(self._storage)
        self._items: dict[int, RateLimitItem] = {}
        self._failures = (RateLimitItemPerMinute(settings.failed_auth_per_minute)
                          if settings.failed_auth_per_minute else None)

    @property
    def enabled(self) -> bool:
        settings = self.settings
        return bool(settings.requests_per_minute or settings.cost_per_minute or any(
            c.requests_per_minute or c.cost_per_minute for c in settings.clients.values()))

    def _item(self, client: Client, what: str) -> RateLimitItem | None:
        own = self.settings.clients.get(client.id) if client.id else None
        limit = getattr(own, what, None) if own is not None else None
        if limit is None:
            limit = getattr(self.settings, what)
        if not limit:
            return None
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = RateLimitItemPerMinute(limit)
        return item

    async def take(self, client: Client, requests: int) -> bool:
        """Count ``requests`` more when that many are left of ``requests_per_minute`` (what a
        request does besides itself: an APQ registration); False, counting none, otherwise."""
        item = self._item(client, "requests_per_minute")
        if item is None:
            return True
        if not await _asked(self._limiter.test(item, "requests", client.rate_key, cost=requests)):
            return False
        return await _asked(self._limiter.hit(item, "requests", client.rate_key, cost=requests))

    async def admit_attempt(self, address: str) -> None:
        """Before credentials are checked: :class:`RateLimited` when ``address`` failed to
        authenticate too often this minute (``failed_auth_per_minute``)."""
        item = self._failures
        if item is None:
            return
        key = f"failed:{address}"
        if not await _asked(self._limiter.test(item, "auth", key)):
            raise RateLimited(ErrorCode.RATE_LIMITED,
                              f"too many failed authentications: at most {item.amount} a minute "
                              "from this address", await self._retry_after(item, "auth", key))

    async def failed(self, address: str) -> None:
        """Count one failed authentication of ``address``."""
        if self._failures is not None:
            await _asked(self._limiter.hit(self._failures, "auth", f"failed:{address}"))

    async def admit(self, client: Client) -> None:
        """Count one request; :class:`RateLimited` past ``requests_per_minute``."""
        item = self._item(client, "requests_per_minute")
        if item is None:
            return
        if not await _asked(self._limiter.hit(item, "requests", client.rate_key)):
            raise RateLimited(ErrorCode.RATE_LIMITED,
                              f"too many requests: at most {item.amount} a minute for this "
                              "client",
                              await self._retry_after(item, "requests", client.rate_key))

    async def admit_cost(self, client: Client, estimate: int | Callable[[], int]) -> None:
        """Admit an operation estimated at ``estimate`` upstream requests, or
        :class:`RateLimited` when what is left of the client's budget is less. A callable
        ``estimate`` is priced only where a cost budget applies (pricing walks the document)."""
        item = self._item(client, "cost_per_minute")
        if item is None:
            return
        if callable(estimate):
            estimate = estimate()
        if estimate <= 0:
            return
        if estimate > item.amount or not await _asked(
                self._limiter.test(item, "cost", client.rate_key, cost=estimate)):
            raise RateLimited(ErrorCode.COST_BUDGET_EXCEEDED,
                              f"the query may make {estimate} upstream requests, more than is "
                              f"left of this client's budget of {item.amount} a minute",
                              await self._retry_after(item, "cost", client.rate_key))

    async def charge(self, client: Client, calls: int) -> None:
        """Charge the upstream calls a request made (past the budget too: the next waits)."""
        item = self._item(client, "cost_per_minute")
        if item is not None and calls > 0:
            # A fixed window adds the cost even past the limit: what was spent is spent.
            await _asked(self._limiter.hit(item, "cost", client.rate_key, cost=calls))

    async def aclose(self) -> None:
        # limits opens its redis-py clients itself and has no close: its bridge holds them
        # (the primary's, and Sentinel's replicas').
        bridge = getattr(self._storage, "bridge", None)
        for name in ("storage", "storage_replica"):
            client = getattr(bridge, name, None)
            if client is not None:
                await client.aclose()

    async def _retry_after(self, item: RateLimitItem, what: str, key: str) -> int:
        try:
            stats = await self._limiter.get_window_stats(item, what, key)
        except Exception:
            return item.get_expiry()
        return max(1, math.ceil(stats.reset_time - time.time()))


def _redis_storage(cache: CacheSettings, *, key_prefix: str) -> Storage:
    """limits' storage for ``cache``'s Redis in its mode (one server, Sentinel, Cluster), over
    redis-py. Each window is one key (limits' own scripts touch no other), so a cluster spreads
    clients' windows over its slots."""
    uri, options = limits_storage(cache)
    kinds: dict[str, type[RedisStorage]] = {
        "single": RedisStorage, "sentinel": RedisSentinelStorage, "cluster": RedisClusterStorage}
    return kinds[cache.redis_mode](uri, implementation="redispy", key_prefix=key_prefix,
                                   **options)


async def _asked(answer: Awaitable[bool]) -> bool:
    """The counter store's answer; True (admit) when the store fails: rate limits must not take
    the gateway down with Redis (logged)."""
    try:
        return await answer
    except Exception as exc:
        logger.warning("rate limit store failed: %s", type(exc).__name__)
        return True
