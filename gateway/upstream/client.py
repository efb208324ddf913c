"""An httpx client per source, and the per-request scope that de-duplicates its calls.

``UpstreamClient.get_json`` is the only way an adapter reaches its upstream. It maps every failure
to an :class:`~gateway.errors.UpstreamError` that names the source and never the URL, its query
string, a header or the body. Within one GraphQL request, identical calls (same source, path,
parameters and language) are made once: the :class:`RequestScope` keeps their in-flight tasks.

Example::

    client = UpstreamClient(source_config, auth_headers={"accessToken": token})
    data = await client.get_json("/productGroup/all", {"page": 1}, scope=RequestScope())
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from gateway.config import SourceConfig
from gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from gateway.upstream.extensions import CACHE_ENTRY, DEADLINE, FRESHNESS, LANGUAGE, STALE_AGE

__all__ = ["Params", "Parse", "RequestScope", "UpstreamClient"]

Params = Mapping[str, str | int]
CallKey = tuple[str, str, tuple[tuple[str, str], ...], str | None]
CacheEntry = tuple[str, float]  # (cache key, stored at)


@dataclass(frozen=True, slots=True)
class Parse:
    """How an adapter reads an answer: ``fn(json, *args)``. Equal by value, so the same reading
    of one cached answer is made once per process (``fn`` a function or bound method)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass
class RequestScope:
    """What one GraphQL request carries to every upstream call it makes."""

    language: str | None = None  # the client's Accept-Language
    request_id: str = ""
    deadline: float | None = None  # time.monotonic() by which the whole request must answer
    stale: dict[str, float] = field(default_factory=dict)  # source → seconds past fresh
    calls: dict[CallKey, asyncio.Task[Any]] = field(default_factory=dict)
    memo: dict[Any, Any] = field(default_factory=dict)  # adapters' per-request results


class UpstreamClient:
    """HTTP for one source: base URL, auth headers, timeout, error mapping."""

    def __init__(
        self,
        source: SourceConfig,
        *,
        auth_headers: Mapping[str, str],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.source = source.name
        self.default_language = source.language
        self._decoded: dict[CacheEntry, Any] = {}  # cache entry → its decoded JSON
        self._parses: dict[tuple[CacheEntry, Parse], Any] = {}  # … → what an adapter read
        self._http = httpx.AsyncClient(
            base_url=source.url,
            headers=dict(auth_headers),
            timeout=httpx.Timeout(source.timeout_seconds, connect=source.connect_timeout_seconds),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _decode(self, content: bytes, entry: CacheEntry | None) -> Any:
        """The JSON of an answer, decoded once per cache entry: a warm hit costs no decoding.

        Decoded values and parsed records are shared by every request that reads the entry:
        adapters and resolvers only read them.
        """
        if entry is None:
            return orjson.loads(content)
        decoded = self._decoded.get(entry)
        if decoded is None:
            decoded = orjson.loads(content)
            if len(self._decoded) >= MAX_DECODED:
                self._decoded.pop(next(iter(self._decoded)))
            self._decoded[entry] = decoded
        return decoded

    async def get_json(
        self,
        path: str,
        params: Params,
        *,
        scope: RequestScope,
        language_header: str | None = None,
        allow_404: bool = False,
        freshness: str = "products",
        parse: Parse | None = None,
    ) -> Any:
        """GET ``path`` and decode JSON; identical calls in one scope are made once.

        ``language_header`` names the header that carries the request's language (CareCloud's
        ``Accept-Language``); the language is part of every call's identity either way.
        With ``allow_404`` a 404 answers None (an unknown id) instead of raising. ``freshness``
        ("groups" or "products") picks the cache TTL. With ``parse`` the answer is
        ``parse.fn(json, *parse.args)``, made once per cache entry in this process.
        """
        language = scope.language or self.default_language
        key: CallKey = (
            self.source,
            path,
            tuple(sorted((k, str(v)) for k, v in params.items())),
            language,
        )
        task = scope.calls.get(key)
        if task is None:
            headers = {language_header: language} if language_header and language else {}
            extensions = {LANGUAGE: language, FRESHNESS: freshness, DEADLINE: scope.deadline}
            task = asyncio.ensure_future(
                self._get(path, dict(key[2]), headers, extensions, allow_404, scope))
            scope.calls[key] = task
        decoded, entry = await asyncio.shield(task)
        if parse is None or decoded is None:
            return decoded
        return self._parsed(decoded, entry, parse)

    def _parsed(self, decoded: Any, entry: CacheEntry | None, parse: Parse) -> Any:
        if entry is None:
            return parse.fn(decoded, *parse.args)
        memo_key = (entry, parse)
        parsed = self._parses.get(memo_key)
        if parsed is None:
            parsed = parse.fn(decoded, *parse.args)
            if len(self._parses) >= MAX_DECODED:
                self._parses.pop(next(iter(self._parses)))
            self._parses[memo_key] = parsed
        return parsed

    async def _get(
        self, path: str, params: dict[str, str], headers: dict[str, str],
        extensions: dict[str, Any], allow_404: bool, scope: RequestScope,
    ) -> Any:
        if scope.deadline is not None and time.monotonic() >= scope.deadline:
            raise UpstreamTimeout(f"source '{self.source}' was not asked: the request's "
                                  "deadline has passed", source=self.source)
        try:
            response = await self._http.get(path, params=params, headers=headers,
                                            extensions=extensions)
        except httpx.TimeoutException:
            raise UpstreamTimeout(
                f"source '{self.source}' did not answer in time", source=self.source
            ) from None
        except httpx.HTTPError:
            raise UpstreamUnavailable(
                f"source '{self.source}' could not be reached", source=self.source
            ) from None
        stale = response.extensions.get(STALE_AGE)
        if isinstance(stale, float | int):
            scope.stale[self.source] = max(float(stale), scope.stale.get(self.source, 0.0))
        if allow_404 and response.status_code == 404:
            return None, None
        _raise_for_status(self.source, response)
        entry = response.extensions.get(CACHE_ENTRY)
        try:
            return self._decode(response.content, entry), entry
        except orjson.JSONDecodeError:
            raise UpstreamBadResponse(
                f"source '{self.source}' answered malformed JSON", source=self.source
            ) from None


MAX_DECODED = 64  # decoded cache entries kept per source (pages of a few hundred KB at most)


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
        retry_after=_retry_after(response.headers.get("retry-after")),
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
