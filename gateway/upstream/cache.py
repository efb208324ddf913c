"""Response caching with stale-if-error, as a transport around the rest of the stack.

A fresh entry answers without touching the upstream. A miss goes on; a 2xx answer is stored for
its TTL plus the stale grace. When the upstream then fails (an exception, 429 or 5xx) and an
entry within the grace exists, that entry answers, marked with ``STALE_AGE`` so the GraphQL
response can say which source's data is stale.

Keys say who asked: format version, source, path and normalised query, the language the source
answers in (one of its own, as its adapter chose it; none for a source that ignores languages, so
clients' ``Accept-Language`` values never multiply entries) and a fingerprint of the credential —
two tokens never share an entry.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import httpx

from gateway.caches.store import FORMAT, CachedAnswer, ResponseStore
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import GatewayError
from gateway.observability.metrics import SourceMetrics
from gateway.scope import SourceUsage
from gateway.upstream.extensions import (
    CACHE_ENTRY,
    CACHE_KEY,
    CACHE_RESULT,
    CREDENTIAL,
    FRESH_UNTIL,
    FRESHNESS,
    LANGUAGE,
    REFRESH,
    STALE_AGE,
    USAGE,
)
from gateway.upstream.headers import decoded_body_headers
from gateway.upstream.httpx_internals import answer_of
from gateway.upstream.layer import Layer

__all__ = ["CachePolicy", "CacheTransport", "cache_key", "cache_layer", "call_cache_key"]


@dataclass(frozen=True, kw_only=True)
class CachePolicy:
    product_ttl: float = 60.0
    group_ttl: float = 300.0
    stale_grace: float = 600.0

    def ttl(self, freshness: object) -> float:
        return self.group_ttl if freshness == "groups" else self.product_ttl


# Each key is worked out once per process while it is asked often: a warm query makes the same
# calls again and again, and quoting and hashing them was a tenth of its CPU (nodes, 12 calls).
@functools.lru_cache(maxsize=4096)
def call_cache_key(source: str, credential: str, path: str, query: tuple[tuple[str, str], ...],
                   language: str | None) -> str:
    """The cache key of a GET of ``path`` (the URL's whole path) with ``query``: one digest
    whatever the parameters' order."""
    raw = f"GET {path}?{urlencode(sorted(query))} lang={language or ''}"
    digest = hashlib.sha256(raw.encode()).hexdigest()[:32]
    return f"{FORMAT.decode()}:{source}:{credential}:{digest}"


def cache_key(source: str, credential: str, request: httpx.Request) -> str:
    """The request's cache key, computed once per request (the dedup and cache layers share it;
    the upstream client computes it before the request, for its fresh-hit lookup).

    ``credential`` is the fingerprint of the source's configured token; a request sent with a
    client's own credential (``CREDENTIAL`` extension) is keyed by that one's instead.
    """
    credential = request.extensions.get(CREDENTIAL) or credential
    known = request.extensions.get(CACHE_KEY)
    if isinstance(known, tuple) and known[:2] == (source, credential):
        return str(known[2])
    key = call_cache_key(source, credential, request.url.path,
                         tuple(parse_qsl(request.url.query.decode(), keep_blank_values=True)),
                         request.extensions.get(LANGUAGE))
    request.extensions[CACHE_KEY] = (source, credential, key)
    return key


def cache_layer(transport: httpx.AsyncBaseTransport | None) -> CacheTransport | None:
    """The cache layer of a source's transport stack, if it has one."""
    while isinstance(transport, Layer):
        if isinstance(transport, CacheTransport):
            return transport
        transport = transport.inner
    return None


def _failed(response: httpx.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


class CacheTransport(Layer):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, store: ResponseStore, source: str,
                 credential: str, policy: CachePolicy, clock: Clock = SYSTEM_CLOCK,
                 metrics: SourceMetrics | None = None) -> None:
        super().__init__(inner)
        self.metrics = metrics
        self.store = store
        self.source = source
        self.credential = credential
        self.policy = policy
        self.clock = clock

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return await self.inner.handle_async_request(request)
        key = cache_key(self.source, self.credential, request)
        ttl = self.policy.ttl(request.extensions.get(FRESHNESS))
        cached = await self.store.get(key) if ttl > 0 else None
        # A refresh (a change-feed poll) reads the source, and keeps ``cached`` for stale-if-error.
        if self._is_fresh(cached, ttl) and not request.extensions.get(REFRESH):
            assert cached is not None
            self._count(request.extensions.get(USAGE), "hit")
            return _response(cached, request, key, ttl)
        request.extensions[CACHE_RESULT] = "miss"
        try:
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
        except (httpx.HTTPError, GatewayError):
            stale = self._stale(cached, ttl, request, key)
            self._count(request.extensions.get(USAGE), "miss" if stale is None else "stale")
            if stale is None:
                raise
            return stale
        if _failed(response):
            stale = self._stale(cached, ttl, request, key)
            self._count(request.extensions.get(USAGE), "miss" if stale is None else "stale")
            return stale or _rebuilt(response, body, request)
        self._count(request.extensions.get(USAGE), "miss")
        if 200 <= response.status_code < 300 and ttl > 0:
            # Stored at the precision the entry keeps, so a later hit names the same entry.
            answer = CachedAnswer(round(self.clock.wall(), 3), response.status_code,
                                  response.headers.get("content-type", ""), body)
            await self.store.set(key, answer, ttl + self.policy.stale_grace)
            return _response(answer, request, key, ttl)
        return _rebuilt(response, body, request)

    async def fresh(self, key: str, freshness: str, usage: SourceUsage | None
                    ) -> tuple[CachedAnswer, float] | None:
        """The fresh entry under ``key`` and until when it is fresh (counted as a hit), or None.

        The upstream client asks this before it builds a request: a hit then costs no request,
        no response and no pass through the layers above this one.
        """
        ttl = self.policy.ttl(freshness)
        cached = await self.store.get(key) if ttl > 0 else None
        if not self._is_fresh(cached, ttl):
            return None
        assert cached is not None
        self._count(usage, "hit")
        return cached, cached.stored_at + ttl

    def fresh_now(self, key: str, freshness: str) -> tuple[CachedAnswer, float] | None:
        """As :meth:`fresh`, without awaiting, where the store holds its entries in this
        process; None also where only awaiting can tell. Not counted: :meth:`count_hit` once
        the entry answers."""
        ttl = self.policy.ttl(freshness)
        cached = self.store.get_now(key) if ttl > 0 else None
        if not self._is_fresh(cached, ttl):
            return None
        assert cached is not None
        return cached, cached.stored_at + ttl

    def count_hit(self, usage: SourceUsage | None) -> None:
        self._count(usage, "hit")

    def _is_fresh(self, cached: CachedAnswer | None, ttl: float) -> bool:
        return cached is not None and cached.age(self.clock.wall()) <= ttl

    def _count(self, usage: SourceUsage | None, result: str) -> None:
        """One lookup's result, in the metrics and the GraphQL request's usage."""
        metrics = self.metrics
        if result == "hit":
            if usage is not None:
                usage.cache_hits += 1
            if metrics is not None:
                metrics.cache_hit.inc()
        elif result == "stale":
            if usage is not None:
                usage.stale_hits += 1
            if metrics is not None:
                metrics.cache_stale.inc()
        elif metrics is not None:
            metrics.cache_miss.inc()

    def _stale(self, cached: CachedAnswer | None, ttl: float, request: httpx.Request, key: str
               ) -> httpx.Response | None:
        age = None if cached is None else cached.age(self.clock.wall())
        if cached is None or age is None or age > ttl + self.policy.stale_grace:
            return None
        response = _response(cached, request, key, None)
        response.extensions[STALE_AGE] = round(age - ttl, 1)
        return response


def _response(cached: CachedAnswer, request: httpx.Request, key: str, ttl: float | None
              ) -> httpx.Response:
    # The entry's identity lets the client reuse what it decoded from the same bytes before;
    # its freshness bounds how long anything built from it may be kept (a stale answer: none).
    extensions: dict[str, object] = {CACHE_ENTRY: (key, cached.stored_at)}
    if ttl is not None:
        extensions[FRESH_UNTIL] = cached.stored_at + ttl
    return answer_of(cached.status, [(b"content-type", cached.content_type.encode())],
                     cached.body, request, extensions)


def _rebuilt(response: httpx.Response, body: bytes, request: httpx.Request) -> httpx.Response:
    # The body is decoded already: drop the headers that described its encoding on the wire.
    return answer_of(response.status_code, decoded_body_headers(response.headers), body,
                     request, dict(response.extensions))
