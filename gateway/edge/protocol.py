"""uvicorn's HTTP protocol with deadlines for reading a request: its headers, then its body.

uvicorn waits forever for the rest of a request line, its headers or its body (its keep-alive
timeout covers only idle connections between requests), so a client sending one byte a second
holds a connection and a task indefinitely. :class:`DeadlineProtocol` is uvicorn's httptools
protocol (what its ``http="auto"`` picks when httptools is installed, as ``uvicorn[standard]``
installs it) with one timer per phase of a request:

* **headers**: from a new connection, or the first byte of the next request on a kept-alive
  one, until the headers are complete: ``header_timeout`` seconds;
* **body**: from then until the body is complete: ``body_timeout`` seconds.

When a timer fires the client gets ``408`` with a JSON error body (``REQUEST_TIMEOUT``) and the
connection is closed (after a lingering moment that keeps a still-sending client from losing the
answer); a new connection that sent nothing is closed without a word, and one whose response has
already begun is just closed. The application then sees ``http.disconnect``.

Pass it to uvicorn with :func:`http_protocol` (uvicorn's ``Config(http=...)`` accepts a protocol
factory)::

    uvicorn.run(app, http=http_protocol(header_timeout=10, body_timeout=30))

The timers are the event loop's, like uvicorn's own keep-alive timer. A WebSocket upgrade (the
headers were read in time) hands the connection over to the WebSocket protocol with no timer of
this one left on it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, Literal

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.errors import ErrorCode

__all__ = ["DeadlineProtocol", "http_protocol"]

Phase = Literal["idle", "headers", "body"]
# After a 408, how long the connection still reads (and drops) what the client sends before it
# closes: see DeadlineProtocol._linger.
LINGER_SECONDS = 2.0


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for a request's headers and one for its
    body (see the module's documentation)."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, header_timeout: float,
                 body_timeout: float) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self._phase: Phase = "idle"
        self._heard = False  # bytes of the request being read have arrived
        self._deadline: float | None = None  # loop.time() the phase must end by (None: idle)
        self._timer: asyncio.TimerHandle | None = None
        self._lingering = False  # answered 408: what arrives now is dropped until the close

    # -- the phases ------------------------------------------------------------------------

    def _enter(self, phase: Phase) -> None:
        """Enter ``phase`` with its deadline. One timer per connection, moved lazily: a phase
        whose deadline is later than the pending timer's leaves it, and the timer, when it fires
        early, waits on for the rest (:meth:`_check`). A request that comes and goes well within
        its deadlines, as nearly every one does, then schedules no timer at all (two schedules
        and two cancels a request were 3.5 µs, a twentieth of a response-cache hit)."""
        self._phase = phase
        if phase == "idle":
            self._heard = False
            self._deadline = None
            return
        timeout = self.header_timeout if phase == "headers" else self.body_timeout
        self._deadline = deadline = self.loop.time() + timeout
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._check)

    def _check(self) -> None:
        """The timer fired: the phase's deadline passed, or it moved later (wait on), or the
        connection is idle (nothing to do until the next request)."""
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        if self.loop.time() < deadline:
            self._timer = self.loop.call_at(deadline, self._check)
            return
        self._expired()

    def _stop_timer(self) -> None:
        """No deadline is left on this connection (closed, or a WebSocket's now)."""
        self._enter("idle")
        if self._timer is not None:
            self._timer.cancel()  # else it would hold the protocol until it fires
            self._timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter("headers")  # a connection that never sends a request is closed too

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # the rest of a request already answered 408
        self._heard = True
        if self._phase == "idle":
            self._enter("headers")
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._heard = True
        if self._phase != "headers":  # the next request of a pipeline, in the same bytes
            self._enter("headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._enter("body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._enter("idle")

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._stop_timer()  # the connection is the WebSocket protocol's from now on
        super().handle_websocket_upgrade()

    # -- a deadline passed -----------------------------------------------------------------

    def _expired(self) -> None:
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self.transport.close()  # too late to answer: a response has begun
                return
            # The application waits for the body: it sees a disconnect, and what it sends
            # from now on goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        if self._heard:
            self.transport.write(self._timeout_response())
            self._linger()
            return
        self.transport.close()

    def _linger(self) -> None:
        """End the connection after the 408 without losing it: a socket closed with bytes
        unread makes the kernel reset the connection, and a client still sending its slow body
        (why it timed out) could then lose the answer it was sent. So the answer ends with a
        FIN, what arrives meanwhile is read and dropped, and the close follows a moment later
        (an HTTP server's lingering close)."""
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self._lingering = True
        self.transport.write_eof()
        self.transport.resume_reading()  # flow control may have paused it: drain, not block
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _timeout_response(self) -> bytes:
        what = "body" if self._phase == "body" else "headers"
        seconds = self.body_timeout if self._phase == "body" else self.header_timeout
        body = orjson.dumps({"errors": [{
            "message": f"the request's {what} did not arrive within {seconds:g} s",
            "extensions": {"code": ErrorCode.REQUEST_TIMEOUT.value}}]})
        head = [b"HTTP/1.1 408 Request Timeout\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in
                 self.server_state.default_headers]
        head += [b"content-type: application/json; charset=utf-8\r\n",
                 b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n"]
        return b"".join(head) + body


def http_protocol(*, header_timeout: float, body_timeout: float) -> Callable[..., Any]:
    """What uvicorn's ``http=`` takes: :class:`DeadlineProtocol` with these deadlines.

    A ``functools.partial`` of a module-level class: it pickles, so ``serve --workers N`` can
    hand it to its worker processes.
    """
    return functools.partial(DeadlineProtocol, header_timeout=header_timeout,
                             body_timeout=body_timeout)
