"""The network under every source's policy layers: HTTP/1.1 over aiohttp behind httpx's API.

httpx's own transport (httpcore) cost about 1.0-1.8 ms of CPU to fetch one 119 KB Axim answer
under load, much of it checking every idle pooled connection for readability before each
request; the same fetch through aiohttp (httpx-aiohttp's transport) cost 0.35 ms
(``make bench``'s machine, 32 concurrent fetches, one core). The layers above still speak httpx.

httpx-aiohttp maps aiohttp's errors onto httpx's coarsely (any dropped connection becomes a
``ConnectTimeout``). The policy layers tell a timeout from an unreachable source, and retry only
what cannot have reached the upstream twice, so the errors are mapped here as httpcore raises
them, and the body is read here, inside that mapping.
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["NetworkTransport", "httpx_error"]


class NetworkTransport(AiohttpTransport):
    """An aiohttp connection pool of ``max_connections``; complete responses, httpx's errors."""

    def __init__(self, *, max_connections: int) -> None:
        super().__init__(limits=httpx.Limits(max_connections=max_connections,
                                             max_keepalive_connections=max_connections))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
            try:
                await response.aread()
            except BaseException:  # cancelled mid-body, too: the connection goes back
                await response.aclose()
                raise
        except httpx.HTTPError as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ClientError | TimeoutError):
                raise httpx_error(cause, request) from cause
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx_error(exc, request) from exc
        return response


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
