"""The network transport (aiohttp behind httpx's API) over real sockets: answers, and each way
a connection can fail mapped to the httpx error the policy layers act on.

The servers are raw asyncio servers that misbehave on purpose: they close before answering,
cut a body short, or never answer.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import pytest

from gateway.caches.store import ResponseStore
from gateway.config import SourceConfig
from gateway.errors import UpstreamTimeout, UpstreamUnavailable
from gateway.scope import RequestScope
from gateway.upstream.client import UpstreamClient
from gateway.upstream.network import NetworkTransport, httpx_error
from gateway.upstream.stack import build_transport, health_for
from tests.helpers import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BODY = b'{"data": [1, 2, 3]}'


def answer(body: bytes = BODY, *, claimed: int | None = None) -> bytes:
    length = len(body) if claimed is None else claimed
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(length).encode() + b"\r\n\r\n" + body)


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


class Server:
    """A TCP server on 127.0.0.1 answering each connection with ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def network() -> AsyncIterator[NetworkTransport]:
    transport = NetworkTransport(max_connections=4)
    yield transport
    await transport.aclose()


async def get(transport: httpx.AsyncBaseTransport, url: str, *, read: float = 5.0
              ) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport, base_url=url,
                                 timeout=httpx.Timeout(read, connect=5.0)) as client:
        return await client.get("/items", params={"page": 1})


async def keep_alive_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                             ) -> None:
    while True:
        await read_request(reader)
        writer.write(answer())
        await writer.drain()


async def test_an_answer_arrives_whole_over_kept_alive_connections(
        network: NetworkTransport) -> None:
    server = Server(keep_alive_answers)
    async with server as url, httpx.AsyncClient(transport=network, base_url=url) as client:
        for _ in range(3):
            response = await client.get("/items")
            assert (response.status_code, response.content) == (200, BODY)
    assert server.connections == 1  # one connection, reused


async def test_an_upstreams_cookies_are_never_sent_back(network: NetworkTransport) -> None:
    # One user's upstream cookies have no place in another's request: no cookie jar.
    heads: list[bytes] = []

    async def cookie_setting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                             ) -> None:
        while True:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 200 OK\r\nSet-Cookie: session=alice; Path=/\r\n"
                         b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
            await writer.drain()

    async with Server(cookie_setting) as url:
        # A host name (a cookie jar keeps no cookie of an IP address), and requests sent as the
        # upstream client sends them: straight to the transport, no httpx client nor its jar.
        url = url.replace("127.0.0.1", "localhost")
        for _ in range(2):
            response = await network.handle_async_request(httpx.Request("GET", f"{url}/items"))
            assert response.content == BODY
    assert len(heads) == 2 and not any(b"cookie:" in head.lower() for head in heads)


async def test_a_compressed_answer_arrives_decoded(network: NetworkTransport) -> None:
    # The body stays as sent below httpx, whose response decodes it (Content-Encoding).
    packed = gzip.compress(BODY)

    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
                     + str(len(packed)).encode() + b"\r\n\r\n" + packed)
        await writer.drain()

    async with Server(gzipped) as url:
        response = await get(network, url)
    assert response.content == BODY


async def test_a_connection_closed_before_the_answer_is_a_remote_protocol_error(
        network: NetworkTransport) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with Server(hang_up) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            await get(network, url)


async def test_a_body_cut_short_is_a_read_error(network: NetworkTransport) -> None:
    async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(BODY, claimed=len(BODY) + 100))
        await writer.drain()

    async with Server(cut_short) as url:
        with pytest.raises(httpx.ReadError):
            await get(network, url)


async def test_an_upstream_that_never_answers_is_a_read_timeout(
        network: NetworkTransport) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    async with Server(silent) as url:
        with pytest.raises(httpx.ReadTimeout):
            await get(network, url, read=0.3)


async def test_a_closed_port_is_a_connect_error(network: NetworkTransport) -> None:
    with pytest.raises(httpx.ConnectError):
        await get(network, f"http://127.0.0.1:{free_port()}")


def test_aiohttp_errors_map_to_the_httpx_errors_httpcore_raises() -> None:
    request = httpx.Request("GET", "http://upstream/items")
    cases: list[tuple[BaseException, type[httpx.TransportError]]] = [
        (aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError(), httpx.ReadTimeout),
        (TimeoutError(), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut"), httpx.ReadError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (aiohttp.ClientError("other"), httpx.TransportError),
    ]
    for error, expected in cases:
        mapped = httpx_error(error, request)
        assert type(mapped) is expected, (error, mapped)
        assert mapped.request is request


async def test_a_dropped_connection_is_retried_and_a_dead_source_named(
        store: ResponseStore) -> None:
    """Through the whole stack: a connection dropped once is tried again (the retry layer's
    RemoteProtocolError); a source that keeps dropping them is UPSTREAM_UNAVAILABLE, and one
    that never answers UPSTREAM_TIMEOUT."""
    drops = 1

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal drops
        await read_request(reader)
        if drops > 0:
            drops -= 1
            return
        writer.write(answer())
        await writer.drain()

    async def client_of(url: str, **tuning: object) -> UpstreamClient:
        config = SourceConfig.model_validate({
            "name": "flaky", "kind": "axim", "base_url": url, "token": "tok", "max_retries": 1,
            "retry_backoff_seconds": 0.01, "cache_ttl_seconds": 0,
            "group_cache_ttl_seconds": 0, **tuning})
        return UpstreamClient(config, auth_headers={"accessToken": "tok"}, transport=(
            build_transport(config, store=store, health=health_for(config))))

    async with Server(flaky) as url:
        client = await client_of(url)
        try:
            assert await client.get_json("/items", {}, scope=RequestScope()) == {
                "data": [1, 2, 3]}
            drops = 10
            with pytest.raises(UpstreamUnavailable) as unavailable:
                await client.get_json("/other", {}, scope=RequestScope())
            assert unavailable.value.source == "flaky"
        finally:
            await client.aclose()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    async with Server(silent) as url:
        client = await client_of(url, timeout_seconds=0.3, max_retries=0)
        try:
            with pytest.raises(UpstreamTimeout):
                await client.get_json("/items", {}, scope=RequestScope())
        finally:
            await client.aclose()
