"""The network under every source's policy layers: HTTP/1.1 over aiohttp behind httpx's API.

httpx's own transport (httpcore) cost about 1.0-1.8 ms of CPU to fetch one 119 KB Axim answer
under load, much of it checking every idle pooled connection for readability before each
request; the same fetch through aiohttp cost 0.35 ms (``make bench``'s machine, 32 concurrent
fetches, one core). The layers above still speak httpx.

The transport is this module's rather than httpx-aiohttp's (which it replaced): that one hands
aiohttp httpx's header object to convert, builds a timeout per call, and streams the body back in
16 KB chunks through httpx's decoders; a call through it cost 290 us of CPU against 145 us for a
bare aiohttp GET (a small Comestri answer, sequential calls). Here the headers go over as bytes
pairs, the timeouts are made once per distinct setting, and the body is read whole by aiohttp
(a gateway decodes an answer only once it has all of it): 250 us.

aiohttp's errors are mapped here onto the httpx errors httpcore raises for the same failure
(:func:`httpx_error`): the policy layers tell a timeout from an unreachable source, and retry only
what cannot have reached the upstream twice.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import httpx

__all__ = ["NetworkTransport", "httpx_error"]

KEEP_ALIVE_SECONDS = 5.0  # an idle pooled connection is closed after this (httpx's default)


class NetworkTransport(httpx.AsyncBaseTransport):
    """An aiohttp connection pool of ``max_connections``; complete responses, httpx's errors."""

    def __init__(self, *, max_connections: int) -> None:
        self._max_connections = max_connections
        self._ssl = httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _client(self) -> aiohttp.ClientSession:
        # Made on the first request: an aiohttp session belongs to the running event loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl,
                                             keepalive_timeout=KEEP_ALIVE_SECONDS)
            # No cookie jar: one user's upstream cookies have no place in another's request.
            # Bodies stay as sent: httpx's response decodes them (Content-Encoding).
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def _timeout(self, timeout: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
        """httpx's timeouts as aiohttp's (connect: to a connection; read: between reads;
        pool: waiting for a pooled connection), one object per distinct setting."""
        parts = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
        made = self._timeouts.get(parts)
        if made is None:
            made = self._timeouts[parts] = aiohttp.ClientTimeout(
                sock_connect=parts[0], sock_read=parts[1], connect=parts[2])
        return made

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            async with self._client().request(
                    request.method, str(request.url), headers=headers,
                    data=request.content or None, allow_redirects=False, compress=False,
                    timeout=self._timeout(request.extensions.get("timeout", {}))) as answer:
                body = await answer.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx_error(exc, request) from exc
        # Extensions of its own: the layers above may add to a response's.
        return httpx.Response(answer.status, headers=answer.raw_headers, content=body,
                              request=request, extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def httpx_error(error: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error httpcore raises for what ``error`` (aiohttp's) says happened."""
    message = str(error) or type(error).__name__
    kind: type[httpx.TransportError]
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(error, TimeoutError):  # SocketTimeoutError, ServerTimeoutError among them
        kind = httpx.ReadTimeout
    elif isinstance(error, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        kind = httpx.RemoteProtocolError
    elif isinstance(error, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        kind = httpx.ReadError
    else:
        kind = httpx.TransportError
    return kind(message, request=request)
