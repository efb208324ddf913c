"""An httpx client per source: the only way an adapter reaches its upstream.

``UpstreamClient.get_json`` maps every failure to an :class:`~gateway.errors.UpstreamError` that
names the source and never the URL, its query string, a header or the body. Within one GraphQL
request, identical calls (same source, path, parameters and language) are made once (the
request's :class:`~gateway.scope.RequestScope` keeps them), and each call made counts against
the request's upstream budget (past it: ``UPSTREAM_BUDGET_EXCEEDED``, and no call). An answer
read from a cache entry is decoded, and read by an adapter, once per entry in this process: the
decoded JSON and the parsed records are kept in the process's :data:`Memo`, bounded by bytes
(``[cache] decoded_max_bytes``) and shared by every source's client and adapter.

Example::

    client = UpstreamClient(source_config, auth_headers={"accessToken": token})
    data = await client.get_json("/productGroup/all", {"page": 1}, scope=RequestScope())
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from gateway.caches.bounded import ByteBoundedLRU
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import DEFAULT_DECODED_MAX_BYTES, SourceConfig
from gateway.credentials import Credential
from gateway.errors import (
    UpstreamBadResponse,
    UpstreamBudgetExceeded,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from gateway.scope import CallKey, RequestScope
from gateway.upstream.cache import cache_layer, call_cache_key
from gateway.upstream.extensions import (
    CACHE_ENTRY,
    CACHE_KEY,
    CREDENTIAL,
    DEADLINE,
    FRESH_UNTIL,
    FRESHNESS,
    LANGUAGE,
    REFRESH,
    ROUTE,
    STALE_AGE,
    USAGE,
)
from gateway.upstream.headers import retry_after_seconds
from gateway.upstream.httpx_internals import url_of

__all__ = ["Memo", "Params", "Parse", "UpstreamClient", "memo_bytes"]

Params = Mapping[str, str | int]
CacheEntry = tuple[str, float]  # (cache key, stored at)
# A call's answer: its body (None: a 404 allowed), its cache entry, and clock.wall() until which
# it stays fresh (0.0: read now, not kept).
Answered = tuple[bytes | None, CacheEntry | None, float]
# What the process keeps read from upstream answers, by kind and identity: ("json", entry),
# ("parsed", entry, parse), and the adapters' ("table", source, language).
Memo = ByteBoundedLRU[tuple[Hashable, ...], Any]
# A decoded answer, or the records read from it, takes up to ~4.7 times its body's bytes
# (measured over the emulators' answers: decoded JSON 3.3-4.2x, 7x for bodies under 200 bytes;
# parsed records 0.3-4.6x, strings shared with the JSON counted again), plus a fixed part.
BYTES_PER_BODY_BYTE = 5
MEMO_ENTRY_OVERHEAD = 1024
URLS_KEPT = 4096  # per client
NO_BODY = httpx.ByteStream(b"")


def memo_bytes(body_bytes: int) -> int:
    """The estimated memory of what is decoded, or parsed, from a body of ``body_bytes``."""
    return BYTES_PER_BODY_BYTE * body_bytes + MEMO_ENTRY_OVERHEAD


@dataclass(frozen=True, slots=True)
class Parse:
    """How an adapter reads an answer: ``fn(json, *args)``, or with ``raw`` ``fn(body, *args)``
    on the answer's bytes (an adapter that decodes typed records itself, in one pass). Equal by
    value, so the same reading of one cached answer is made once per process (``fn`` a function
    or bound method)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    raw: bool = False


class UpstreamClient:
    """HTTP for one source: base URL, auth headers, timeout, error mapping."""

    def __init__(
        self,
        source: SourceConfig,
        *,
        auth_headers: Mapping[str, str],
        credential_headers: Callable[[str], Mapping[str, str]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
        memo: Memo | None = None,
    ) -> None:
        self.source = source.name
        self.clock = clock
        self.max_concurrency = source.max_concurrency
        self.default_language = source.language
        # How a client's own credential is sent (the adapter's auth header format), for a
        # request that carries one for this source (``scope.credentials``).
        self._credential_headers = credential_headers
        # Shared by the runtime's clients and adapters (one bound per process); its own otherwise.
        self.memo: Memo = ByteBoundedLRU(DEFAULT_DECODED_MAX_BYTES) if memo is None else memo
        # The client holds the settings (base URL, httpx's default headers with the source's,
        # timeouts); requests are built here and handed to the transport stack, past the
        # client's send: it would add cookies kept from earlier answers (one user's upstream
        # cookies have no place in another's request) and handle redirects and hooks nothing
        # uses, at about 80 us a call (a nodes query makes sixteen).
        self._transport = transport if transport is not None else httpx.AsyncHTTPTransport()
        self._http = httpx.AsyncClient(
            base_url=source.url,
            headers=dict(auth_headers),
            timeout=httpx.Timeout(source.timeout_seconds, connect=source.connect_timeout_seconds),
            transport=self._transport,
        )
        self._timeout = self._http.timeout.as_dict()
        # A fresh cache entry is looked up before any request is built (see ``_get``).
        self._cache = cache_layer(transport)
        base_url = self._http.base_url
        self._base_path = base_path = base_url.path  # ends with "/" (httpx adds it)
        # The headers of httpx's client's requests: Host, then its defaults with the source's.
        self._base_headers = [(b"Host", base_url.netloc), *self._http.headers.raw]
        # A query's calls are made again and again (by other requests, in other languages):
        # their URLs are built once while asked often.
        self._url: Callable[[str, tuple[tuple[str, str], ...]], httpx.URL] = (
            functools.lru_cache(maxsize=URLS_KEPT)(
                lambda path, params: url_of(base_url, base_path + path.lstrip("/"), params)))

    async def aclose(self) -> None:
        await self._http.aclose()

    def _request(self, path: str, params: tuple[tuple[str, str], ...], headers: dict[str, str],
                 extensions: dict[str, Any]) -> httpx.Request:
        """The GET httpx's client would build (the same URL, headers and timeouts), without
        its per-request work (copies of the headers, a body to encode and read) a GET needs
        none of: 3 us a request instead of 20."""
        raw = self._base_headers
        if headers:  # in place of the client's own of the same names, as httpx merges them
            extra = httpx.Headers(headers).raw
            replaced = {name.lower() for name, _ in extra}
            raw = [header for header in raw if header[0].lower() not in replaced] + extra
        return httpx.Request("GET", self._url(path, params), headers=raw, stream=NO_BODY,
                             extensions={**extensions, "timeout": self._timeout})

    def _decode(self, content: bytes, entry: CacheEntry | None) -> Any:
        """The JSON of an answer, decoded once per cache entry: a warm hit costs no decoding.

        Decoded values and parsed records are shared by every request that reads the entry:
        adapters and resolvers only read them.
        """
        decoded = None if entry is None else self.memo.get(("json", entry))
        if decoded is None:
            try:
                decoded = orjson.loads(content)
            except orjson.JSONDecodeError:
                raise UpstreamBadResponse(
                    f"source '{self.source}' answered malformed JSON", source=self.source
                ) from None
            if entry is not None:
                self.memo.put(("json", entry), decoded, memo_bytes(len(content)))
        return decoded

    async def get_json(
        self,
        path: str,
        params: Params,
        *,
        scope: RequestScope,
        language: str | None = None,
        language_header: str | None = None,
        allow_404: bool = False,
        freshness: str = "products",
        parse: Parse | None = None,
        route: str | None = None,
    ) -> Any:
        """GET ``path`` and decode JSON; identical calls in one scope are made once.

        ``language`` is the language the source answers this call in, as its adapter chose it
        from the client's ranges (None: the source ignores languages); it is part of the call's
        identity and cache key, and ``language_header`` names the header that carries it
        (CareCloud's ``Accept-Language``). The client's own header never reaches a source.
        With ``allow_404`` a 404 answers None (an unknown id) instead of raising. ``freshness``
        ("groups" or "products") picks the cache TTL. With ``parse`` the answer is
        ``parse.fn(json, *parse.args)``, made once per cache entry in this process. ``route``
        is ``path`` with its ids replaced (``/productGroup/{id}``): metrics and spans name the
        call by it (default: ``path``, for paths without ids).

        The request's id goes upstream as ``X-Request-ID``, so an upstream's logs can be matched
        with the gateway's.
        """
        key: CallKey = (
            self.source,
            path,
            tuple(sorted((k, str(v)) for k, v in params.items())),
            language,
        )
        credential = scope.credentials.get(self.source)
        fingerprint: str | None = None
        if credential is not None and self._credential_headers is not None:
            fingerprint = credential.fingerprint
        cached_key = None
        if self._cache is not None:
            cached_key = call_cache_key(self.source, fingerprint or self._cache.credential,
                                        self._base_path + path.lstrip("/"), key[2], language)
        answered = self._answered_now(key, cached_key, freshness, scope)
        if answered is None:
            answered = await scope.calls.once(key, lambda: self._get(
                path, key[2], self._headers(language, language_header, credential, scope),
                self._extensions(language, freshness, route or path, fingerprint, cached_key,
                                 scope),
                allow_404, scope, cached_key))
        content, entry, fresh_until = answered
        # Every caller notes the answer's freshness, not only the one that made the call: a
        # group table read from calls another field made first must not be kept longer.
        scope.fresh_for(fresh_until)
        if content is None:
            return None  # a 404 the caller allowed
        if scope.refresh:
            entry = None  # a poll's answers: decoded for it alone, not kept beside the store's
        if parse is not None and parse.raw:
            return self._parsed(content, entry, len(content), parse)
        decoded = self._decode(content, entry)
        return decoded if parse is None else self._parsed(decoded, entry, len(content), parse)

    def _answered_now(self, key: CallKey, cached_key: str | None, freshness: str,
                      scope: RequestScope) -> Answered | None:
        """A fresh entry this process holds answers the call at once: no task, no request
        (on a warm query that task was a tenth of the CPU). None: the call goes the usual way
        (:meth:`_get`), whose checks come first here too."""
        if (cached_key is None or self._cache is None or scope.refresh or key in scope.calls
                or (scope.deadline is not None and self.clock.monotonic() >= scope.deadline)):
            return None
        hit = self._cache.fresh_now(cached_key, freshness)
        if hit is None or not scope.spend_upstream_request():
            return None
        answer, fresh_until = hit
        self._cache.count_hit(scope.usage_of(self.source))
        answered = answer.body, (cached_key, answer.stored_at), fresh_until
        scope.calls.put(key, answered)
        return answered

    def _headers(self, language: str | None, language_header: str | None,
                 credential: Credential | None, scope: RequestScope) -> dict[str, str]:
        headers = {"X-Request-ID": scope.request_id} if scope.request_id else {}
        if language_header and language:
            headers[language_header] = language
        if credential is not None and self._credential_headers is not None:
            # In place of the configured token (same header names), and keyed by it.
            headers.update(self._credential_headers(credential.token))
        return headers

    def _extensions(self, language: str | None, freshness: str, route: str,
                    fingerprint: str | None, cached_key: str | None, scope: RequestScope
                    ) -> dict[str, Any]:
        extensions: dict[str, Any] = {
            LANGUAGE: language, FRESHNESS: freshness, DEADLINE: scope.deadline, ROUTE: route,
            USAGE: scope.usage_of(self.source), REFRESH: scope.refresh}
        if fingerprint is not None:
            extensions[CREDENTIAL] = fingerprint
        if cached_key is not None and self._cache is not None:
            extensions[CACHE_KEY] = (self.source, fingerprint or self._cache.credential,
                                     cached_key)
        return extensions

    def _parsed(self, decoded: Any, entry: CacheEntry | None, body_bytes: int, parse: Parse
                ) -> Any:
        if entry is None:
            return parse.fn(decoded, *parse.args)
        memo_key = ("parsed", entry, parse)
        parsed = self.memo.get(memo_key)
        if parsed is None:
            parsed = parse.fn(decoded, *parse.args)
            self.memo.put(memo_key, parsed, memo_bytes(body_bytes))
        return parsed

    async def _get(
        self, path: str, params: tuple[tuple[str, str], ...], headers: dict[str, str],
        extensions: dict[str, Any], allow_404: bool, scope: RequestScope, cached_key: str | None,
    ) -> Any:
        if scope.deadline is not None and self.clock.monotonic() >= scope.deadline:
            raise UpstreamTimeout(f"source '{self.source}' was not asked: the request's "
                                  "deadline has passed", source=self.source)
        if not scope.spend_upstream_request():
            raise UpstreamBudgetExceeded(self.source, scope.upstream_budget or 0)
        if cached_key is not None and self._cache is not None and not scope.refresh:
            # A fresh entry answers as the cache layer would, without a request, a response or
            # the layers above it (on a warm query, they were most of the client's CPU). A miss
            # goes the usual way and is looked up again there, behind the de-duplication.
            hit = await self._cache.fresh(cached_key, extensions[FRESHNESS], extensions[USAGE])
            if hit is not None:
                answer, fresh_until = hit
                return answer.body, (cached_key, answer.stored_at), fresh_until
        # One request's own calls wait for each other here (a wide query priced within
        # max_cost must not take the source's whole shared queue, nor fail for it).
        async with scope.slot(self.source, self.max_concurrency):
            return await self._send(path, params, headers, extensions, allow_404, scope)

    async def _send(
        self, path: str, params: tuple[tuple[str, str], ...], headers: dict[str, str],
        extensions: dict[str, Any], allow_404: bool, scope: RequestScope,
    ) -> Any:
        if scope.deadline is not None and self.clock.monotonic() >= scope.deadline:
            raise UpstreamTimeout(f"source '{self.source}' was not asked: the request's "
                                  "deadline has passed", source=self.source)
        try:
            response = await self._transport.handle_async_request(
                self._request(path, params, headers, extensions))
            await response.aread()
        except httpx.TimeoutException:
            raise UpstreamTimeout(
                f"source '{self.source}' did not answer in time", source=self.source
            ) from None
        except httpx.HTTPError:
            raise UpstreamUnavailable(
                f"source '{self.source}' could not be reached", source=self.source
            ) from None
        kept_until = response.extensions.get(FRESH_UNTIL)
        fresh_until = kept_until if isinstance(kept_until, float) else 0.0  # not kept: now
        stale = response.extensions.get(STALE_AGE)
        if isinstance(stale, float | int):
            scope.stale[self.source] = max(float(stale), scope.stale.get(self.source, 0.0))
        if allow_404 and response.status_code == 404:
            return None, None, fresh_until
        _raise_for_status(self.source, response)
        return response.content, response.extensions.get(CACHE_ENTRY), fresh_until


def _raise_for_status(source: str, response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    error: type[UpstreamError]
    if status in (401, 403):
        error, what = UpstreamUnauthorized, "refused the gateway's credentials"
    elif status == 429:
        error, what = UpstreamRateLimited, "is rate limiting the gateway"
    elif status >= 500:
        error, what = UpstreamUnavailable, f"failed (HTTP {status})"
    else:
        error, what = UpstreamBadResponse, f"rejected the gateway's request (HTTP {status})"
    raise error(
        f"source '{source}' {what}",
        source=source,
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
    )
