"""The network transport (HTTP/1.1 on asyncio's sockets, parsed by llhttp) over real sockets:
answers in each framing HTTP/1.1 allows, kept-alive connections, bounds, and each way a
connection can fail mapped to the httpx error the policy layers act on.

The servers are raw asyncio servers that misbehave on purpose: they close before answering,
cut a body short, never answer, or answer too much.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import trustme

from gateway.caches.store import ResponseStore
from gateway.config import SourceConfig
from gateway.errors import UpstreamTimeout, UpstreamUnavailable
from gateway.scope import RequestScope
from gateway.upstream.client import UpstreamClient
from gateway.upstream.network import MAX_HEAD_BYTES, NetworkTransport
from gateway.upstream.stack import build_transport, health_for
from tests.clock import ManualClock
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


async def get(transport: httpx.AsyncBaseTransport, url: str, *, read: float = 5.0,
              pool: float = 5.0) -> httpx.Response:
    """GET /items?page=1 as the upstream client sends it: straight to the transport, which
    stays open (an httpx client would close it on leaving)."""
    timeout = httpx.Timeout(read, connect=5.0, pool=pool).as_dict()
    request = httpx.Request("GET", f"{url}/items", params={"page": 1},
                            extensions={"timeout": timeout})
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


def answering(*answers: bytes) -> Handler:
    """A server that answers each request of a connection with the next of ``answers``, then
    reads the next request and closes without an answer."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for raw in answers:
            await read_request(reader)
            writer.write(raw)
            await writer.drain()
        await read_request(reader)
    return handler


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


@pytest.mark.parametrize("raw", [
    # chunked, in chunks of their own sizes
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"7\r\n{\"data\"\r\nc\r\n: [1, 2, 3]}\r\n0\r\n\r\n",
    # no length: the body runs until the server closes
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY,
    # HTTP/1.0
    b"HTTP/1.0 200 OK\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY,
    # an informational answer first
    b"HTTP/1.1 100 Continue\r\n\r\n" + answer(),
], ids=["chunked", "until-close", "http-1.0", "100-continue"])
async def test_each_framing_of_an_answer_arrives_whole(network: NetworkTransport, raw: bytes
                                                       ) -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(raw)
        await writer.drain()

    async with Server(once) as url:
        response = await get(network, url)
    assert (response.status_code, response.content) == (200, BODY)


async def test_the_request_goes_out_as_httpx_would_send_it(network: NetworkTransport) -> None:
    heads: list[bytes] = []

    async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer())
        await writer.drain()

    async with Server(recording) as url:
        request = httpx.Request("GET", f"{url}/items?page=1&q=a%20b",
                                headers={"X-Request-ID": "r1", "Accept": "*/*"})
        await network.handle_async_request(request)
    request_line, *headers = heads[0].decode().split("\r\n")[:-2]
    assert request_line == "GET /items?page=1&q=a%20b HTTP/1.1"
    assert headers == [f"Host: {url.removeprefix('http://')}", "X-Request-ID: r1", "Accept: */*"]


async def test_a_header_that_would_split_the_head_is_never_sent(
        network: NetworkTransport) -> None:
    server = Server(keep_alive_answers)
    async with server as url:
        request = httpx.Request("GET", f"{url}/items",
                                headers={"X-Request-ID": "a\r\nX-Injected: 1"})
        with pytest.raises(httpx.LocalProtocolError):
            await network.handle_async_request(request)
    assert server.connections == 0


async def test_a_connection_its_server_closed_as_the_request_went_out_is_replaced(
        network: NetworkTransport) -> None:
    # The first connection answers once, then takes the next request and hangs up: nothing of
    # that request was read, so a new connection asks again (a GET cannot have been done twice).
    server = Server(answering(answer()))
    async with server as url:
        first, second = await get(network, url), await get(network, url)
    assert first.content == second.content == BODY
    assert server.connections == 2


async def test_a_request_not_safe_to_repeat_is_not_asked_again(
        network: NetworkTransport) -> None:
    server = Server(answering(answer()))
    async with server as url:
        for expected in (None, httpx.RemoteProtocolError):
            request = httpx.Request("POST", f"{url}/items", content=b"{}")
            if expected is None:
                await network.handle_async_request(request)
                continue
            with pytest.raises(expected):  # the server may have acted on it: not sent twice
                await network.handle_async_request(request)
    assert server.connections == 1


async def test_a_connection_idle_past_the_keep_alive_is_not_reused() -> None:
    time = ManualClock()
    network = NetworkTransport(max_connections=4, clock=time.clock)
    server = Server(keep_alive_answers)
    try:
        async with server as url:
            await get(network, url)
            time.advance(4)
            await get(network, url)
            assert server.connections == 1
            time.advance(6)
            await get(network, url)
            assert server.connections == 2
    finally:
        await network.aclose()


async def test_a_cancelled_request_does_not_leave_its_answer_to_the_next(
        network: NetworkTransport) -> None:
    release = asyncio.Event()
    server: Server

    async def slow_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if server.connections == 1:  # the first connection answers late
            await read_request(reader)
            await release.wait()
            writer.write(answer(b'"late"'))
            await writer.drain()
        await keep_alive_answers(reader, writer)

    server = Server(slow_first)
    async with server as url:
        waiting = asyncio.ensure_future(get(network, url))
        await asyncio.sleep(0.2)
        waiting.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert (await get(network, url)).content == BODY
    assert server.connections == 2


async def test_no_free_connection_within_the_pool_timeout_is_a_pool_timeout() -> None:
    network = NetworkTransport(max_connections=1)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    try:
        async with Server(silent) as url:
            holding = asyncio.ensure_future(get(network, url, read=10))
            await asyncio.sleep(0.1)
            with pytest.raises(httpx.PoolTimeout):
                await get(network, url, pool=0.2)
            holding.cancel()
    finally:
        await network.aclose()


async def test_answers_past_the_bounds_are_refused() -> None:
    network = NetworkTransport(max_connections=2, max_body_bytes=1000)
    huge_head = (b"HTTP/1.1 200 OK\r\nX-Filler: " + b"x" * MAX_HEAD_BYTES
                 + b"\r\nContent-Length: 2\r\n\r\n{}")
    try:
        for raw in (answer(b"[" + b"1," * 600 + b"1]"), huge_head):
            server = Server(answering(raw))
            async with server as url:
                with pytest.raises(httpx.RemoteProtocolError, match="exceed"):
                    await get(network, url)
    finally:
        await network.aclose()


async def test_bytes_after_the_answer_close_the_connection(network: NetworkTransport) -> None:
    # An answer followed by bytes nobody asked for: what comes next on that connection cannot be
    # trusted, so the next request goes on a new one.
    server = Server(answering(answer() + answer(b'"extra"'), answer()))
    async with server as url:
        assert (await get(network, url)).content == BODY
        assert (await get(network, url)).content == BODY
    assert server.connections == 2


async def test_a_tls_upstream_is_verified_by_its_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS as production upstreams serve it: the server's name sent (SNI), its chain checked
    against the trusted CAs (here: this test's, through ``SSL_CERT_FILE`` as httpx reads it)
    and its name against the URL's; a certificate for another name is refused."""
    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    names: list[str | None] = []

    def remember_name(_: object, name: str | None, __: object) -> None:
        names.append(name)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    context.sni_callback = remember_name
    server = await asyncio.start_server(keep_alive_answers, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    network = NetworkTransport(max_connections=2)
    try:
        for _ in range(2):
            response = await get(network, f"https://localhost:{port}")
            assert (response.status_code, response.content) == (200, BODY)
        assert names == ["localhost"]  # one handshake: the connection was kept
        with pytest.raises(httpx.ConnectError):  # the certificate names localhost, not the IP
            await get(network, f"https://127.0.0.1:{port}")
    finally:
        await network.aclose()
        server.close()
