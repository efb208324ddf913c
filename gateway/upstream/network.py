"""The network under every source's policy layers: HTTP/1.1 on asyncio's own sockets, parsed by
httptools (llhttp, the parser uvicorn serves with), behind httpx's transport API.

Why not a client library: a small upstream answer (a Comestri product, 32 fetches at a time, one
core) cost 168 us of CPU through a bare aiohttp GET and 170 us through aiosonic, against 32 us
over an ``asyncio.Protocol`` feeding llhttp (httpx's own transport, httpcore, was slower still
than aiohttp: 1.0-1.8 ms against 0.35 ms for a 119 KB answer under load). A nodes query makes
fifteen such calls. What a gateway needs of HTTP/1.1 is small: GETs on kept-alive connections to
a handful of configured hosts, whole bodies, timeouts. The parsing, where the protocol's hard
cases live (chunked bodies, header folding, HTTP/1.0), stays llhttp's.

What this transport does:

* one pool per origin of at most ``max_connections``, the most recently used idle connection
  first; one closed by its server, or idle for ``KEEP_ALIVE_SECONDS``, is not used again;
* httpx's timeouts: ``pool`` for a free connection, ``connect`` for TCP and TLS, ``read`` between
  two reads of the answer;
* a kept-alive connection its server closed as the request went out (nothing came back) is
  replaced once by a new one, for an idempotent request (a GET) only;
* no cookies kept, no redirects followed, no decompression (httpx's response decodes
  ``Content-Encoding``), and no proxies from the environment;
* bounded answers: a head over ``MAX_HEAD_BYTES`` or a body over ``MAX_BODY_BYTES`` is refused;
* failures as the httpx errors httpcore raises for the same event: the
  policy layers tell a timeout from an unreachable source, and retry only what cannot have reached
  the upstream twice.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any, cast

import httptools
import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.upstream.httpx_internals import answer_of

__all__ = ["MAX_BODY_BYTES", "MAX_HEAD_BYTES", "NetworkTransport"]

KEEP_ALIVE_SECONDS = 5.0  # an idle pooled connection is closed after this (httpx's default)
MAX_HEAD_BYTES = 64 * 1024  # status line and headers of one answer
MAX_BODY_BYTES = 256 * 1024 * 1024  # one answer's body, as sent (before any decompression)

IDEMPOTENT = frozenset({"GET", "OPTIONS", "PUT", "DELETE"})  # RFC 9110, 9.2.2
Origin = tuple[bytes, bytes, int]  # scheme, host, port
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class _Failed(Exception):
    """How an exchange failed, before it is told as httpx's error for its request."""

    def __init__(self, kind: type[httpx.TransportError], message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one exchange at a time, its answer parsed as it arrives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Clock, max_body_bytes: int
                 ) -> None:
        self._loop = loop
        self._clock = clock
        self._max_body_bytes = max_body_bytes
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[Answer] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._head_bytes = self._body_bytes = 0
        self._framed = False  # the answer says where its body ends (length or chunks)
        self._headers_done = False
        self.received = False  # a byte of the current answer has arrived
        self._read_timeout: float | None = None
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.idle_since = clock.monotonic()

    # -- the exchange --------------------------------------------------------------------------

    async def exchange(self, head: bytes, body: bytes, read_timeout: float | None) -> Answer:
        """Send one request and wait for its whole answer; a :class:`_Failed` otherwise."""
        assert self._transport is not None and self._answer is None
        if self.closed:  # closed by its server since it was picked: nothing was sent
            raise _Failed(httpx.RemoteProtocolError, "the upstream closed the connection")
        answer: asyncio.Future[Answer] = self._loop.create_future()
        self._answer = answer
        self._headers, self._body = [], []
        self._head_bytes = self._body_bytes = 0
        self._framed = self.received = self._headers_done = False
        self._read_timeout = read_timeout
        self._transport.write(head + body if body else head)
        if read_timeout is not None:
            self._last_read = self._loop.time()
            self._timer = self._loop.call_at(self._last_read + read_timeout, self._check_read)
        try:
            return await answer
        except asyncio.CancelledError:
            self.close()  # the answer may still come: this connection cannot serve another
            raise
        finally:
            self._answer = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _check_read(self) -> None:
        """The read timeout's timer: fails the exchange once no byte came for that long."""
        assert self._read_timeout is not None
        due = self._last_read + self._read_timeout
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check_read)
            return
        self._timer = None
        self._fail(httpx.ReadTimeout, "timed out waiting for the upstream's answer")

    def _fail(self, kind: type[httpx.TransportError], message: str) -> None:
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_exception(_Failed(kind, message))
        self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._answer is None:  # bytes nobody asked for: the connection's state is unknown
            self.close()
            return
        self.received = True
        if self._read_timeout is not None:
            self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            refused = error.__context__  # a callback's own refusal (a bound), as httptools keeps it
            if isinstance(refused, _Failed):
                self._fail(refused.kind, str(refused))
            else:
                self._fail(httpx.RemoteProtocolError, f"malformed answer: {error}")

    def eof_received(self) -> bool:
        return False  # close the transport: a half-closed connection serves nothing more

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is None or answer.done():
            return
        if self._headers_done and not self._framed:  # the body ran until the close
            self._complete(keep_alive=False)
        elif not self.received:
            self._fail(httpx.RemoteProtocolError,
                       "the upstream closed the connection without answering")
        else:
            self._fail(httpx.ReadError, "the upstream closed the connection mid-answer")

    # -- httptools' callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        answer = self._answer
        if answer is None or answer.done():
            raise _Failed(httpx.RemoteProtocolError, "bytes after the answer")
        self._headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _Failed(httpx.RemoteProtocolError,
                          f"the answer's headers exceed {MAX_HEAD_BYTES} bytes")
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding"
                                            and b"chunked" in value.lower()):
            self._framed = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._max_body_bytes:
            raise _Failed(httpx.RemoteProtocolError,
                          f"the answer's body exceeds {self._max_body_bytes} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() < 200:  # 1xx: informational, the answer follows
            self._headers, self._body, self._framed = [], [], False
            return
        self._complete(keep_alive=self._parser.should_keep_alive())

    def _complete(self, *, keep_alive: bool) -> None:
        answer = self._answer
        if answer is None or answer.done():
            return
        if not keep_alive:
            self.close()
        self.idle_since = self._clock.monotonic()
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        answer.set_result((self._parser.get_status_code(), self._headers, body))


class _Pool:
    """The connections to one origin: at most ``limit``, idle ones reused newest first."""

    def __init__(self, origin: Origin, limit: int, ssl_context: ssl.SSLContext, clock: Clock,
                 max_body_bytes: int) -> None:
        scheme, host, port = origin
        self._clock = clock
        self._max_body_bytes = max_body_bytes
        self._host = host.decode("ascii")
        self._port = port
        self._ssl = ssl_context if scheme == b"https" else None
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    async def exchange(self, head: bytes, body: bytes, timeouts: Mapping[str, Any], *,
                       idempotent: bool) -> Answer:
        await self._acquire(timeouts.get("pool"))
        try:
            connection = self._reusable()
            if connection is not None:
                try:
                    return await self._on(connection, head, body, timeouts)
                except _Failed as failed:
                    # Closed by its server as the request went out, nothing of an answer read:
                    # asked again on a new connection, if asking twice is harmless.
                    if (connection.received or failed.kind is not httpx.RemoteProtocolError
                            or not idempotent):
                        raise
            connection = await self._connect(timeouts.get("connect"))
            return await self._on(connection, head, body, timeouts)
        finally:
            self._slots.release()

    async def _acquire(self, timeout: float | None) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise _Failed(httpx.PoolTimeout, "timed out waiting for a connection") from None

    def _reusable(self) -> _Connection | None:
        expired = self._clock.monotonic() - KEEP_ALIVE_SECONDS
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and connection.idle_since > expired:
                return connection
            self._discard(connection)
        return None

    async def _on(self, connection: _Connection, head: bytes, body: bytes,
                  timeouts: Mapping[str, Any]) -> Answer:
        try:
            answer = await connection.exchange(head, body, timeouts.get("read"))
        except BaseException:
            self._discard(connection)
            raise
        if connection.closed:
            self._discard(connection)
        else:
            self._idle.append(connection)
        return answer

    async def _connect(self, timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, self._clock, self._max_body_bytes),
                    self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None)
        except TimeoutError:
            raise _Failed(httpx.ConnectTimeout, "timed out connecting to the upstream") from None
        except (OSError, ssl.SSLError) as error:
            raise _Failed(httpx.ConnectError, f"could not connect: {error}") from None
        self._open.add(connection)
        return connection

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    def close(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()


class NetworkTransport(httpx.AsyncBaseTransport):
    """Pools of at most ``max_connections`` per origin; whole answers of at most
    ``max_body_bytes``; httpx's errors. ``clock`` tells how long a connection was idle."""

    def __init__(self, *, max_connections: int, max_body_bytes: int = MAX_BODY_BYTES,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._max_connections = max_connections
        self._max_body_bytes = max_body_bytes
        self._clock = clock
        self._ssl = httpx.create_ssl_context()
        self._pools: dict[Origin, _Pool] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https") or request.method in ("HEAD", "CONNECT"):
            raise httpx.UnsupportedProtocol(
                f"{request.method} {scheme.decode()} is not supported upstream", request=request)
        origin = (scheme, url.raw_host, url.port or (443 if scheme == b"https" else 80))
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(origin, self._max_connections, self._ssl,
                                               self._clock, self._max_body_bytes)
        body = await request.aread()  # a GET's is empty
        try:
            status, headers, content = await pool.exchange(
                _head(request), body, request.extensions.get("timeout", {}),
                idempotent=request.method in IDEMPOTENT)
        except _Failed as failed:
            raise failed.kind(str(failed), request=request) from None
        return answer_of(status, headers, content, request, {"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _head(request: httpx.Request) -> bytes:
    """The request line and headers (httpx's request holds ``Host`` and, with a body,
    ``Content-Length``); a header that would split the head is refused."""
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    head = b"".join(lines)
    if head.count(b"\n") != len(request.headers.raw) + 2 or b"\0" in head:
        raise httpx.LocalProtocolError("a header name or value holds a line break",
                                       request=request)
    return head

