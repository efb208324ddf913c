"""GraphQL over Server-Sent Events, "distinct connections" mode (graphql-sse's PROTOCOL.md):
one operation per request, answered as ``text/event-stream``.

* each result is a ``next`` event whose ``data`` is the result's JSON (one line); a
  subscription's event carries the change feed's event id as the SSE ``id``, so a client that
  reconnects sends it back as ``Last-Event-ID`` and resumes after it;
* the stream ends with a ``complete`` event (with an empty ``data``, which ``EventSource``
  needs to dispatch it);
* a ``: ping`` comment goes out when nothing else did for :data:`KEEP_ALIVE_SECONDS`, so proxies
  and load balancers keep a quiet stream open;
* a client that disconnects ends the stream at once: what produces its events is closed (a
  subscription leaves the change feed's hub), not left until the next write fails.

Example::

    return EventStream(frames())  # frames(): next_frame(...) per result, then COMPLETE
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

__all__ = ["COMPLETE", "EVENT_STREAM", "KEEP_ALIVE_SECONDS", "EventStream", "next_frame"]

logger = logging.getLogger("gateway.sse")

EVENT_STREAM = "text/event-stream"
KEEP_ALIVE_SECONDS = 15.0
# A write that waits this long is a client that stopped reading with the socket's buffers full:
# its connection is closed (its subscription has long left the hub, its queue having filled).
STALLED_SECONDS = 30.0
COMPLETE = b"event: complete\ndata:\n\n"
PING = b": ping\n\n"


def next_frame(body: bytes, event_id: str | None = None) -> bytes:
    """A ``next`` event of one result's JSON (orjson writes no newline: one ``data`` line)."""
    head = b"id: " + event_id.encode() + b"\n" if event_id else b""
    return head + b"event: next\ndata: " + body + b"\n\n"


class EventStream(StreamingResponse):
    """An event stream of ``frames``, with keep-alive comments while none comes, that ends
    when they end or the client leaves (then ``client_left``).

    The frames are produced by a task of their own and handed over one at a time, so a client
    that reads slowly holds back the producer (a subscription's queue then fills, and the hub
    drops it) instead of piling frames up in memory; a client that reads nothing for
    ``stalled`` seconds with its buffers full is disconnected (ASGI has no abort: the response
    ends unfinished, and the server closes the connection).
    """

    def __init__(self, frames: AsyncIterator[bytes], *,
                 keep_alive: float | None = KEEP_ALIVE_SECONDS,
                 stalled: float = STALLED_SECONDS,
                 open_streams: set[EventStream] | None = None,
                 media_type: str = EVENT_STREAM) -> None:
        # media_type: another streamed answer written the same way (an answer in parts,
        # multipart/mixed: no keep-alive, whose comments only an event stream has).
        super().__init__(frames, media_type=media_type, headers={
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx would hold events back in its buffer
        })
        self.frames = frames
        self.keep_alive = keep_alive
        self.stalled = stalled
        self.client_left = False
        self.ended = asyncio.Event()
        self._open = open_streams if open_streams is not None else set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._open.add(self)
        try:
            await self._stream(receive, send)
        finally:
            self._open.discard(self)
            self.ended.set()

    async def _stream(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        handover: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)  # None: the end
        producer = asyncio.ensure_future(self._produce(handover))
        writer = asyncio.ensure_future(self._write(handover, send))
        watcher = asyncio.ensure_future(_disconnect(receive))
        try:
            await asyncio.wait((writer, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (producer, writer, watcher):
                task.cancel()
            for task in (producer, writer, watcher):
                # A stalled writer's TimeoutError: the response ends unfinished, on purpose.
                with contextlib.suppress(asyncio.CancelledError, OSError, TimeoutError):
                    await task
            await _closed(self.frames)
        self.client_left = writer.cancelled() or writer.exception() is not None

    async def _produce(self, handover: asyncio.Queue[bytes | None]) -> None:
        try:
            async for frame in self.frames:
                await handover.put(frame)
        except Exception:  # a bug: the stream ends, the client sees it cut short
            logger.exception("event stream failed")
        await handover.put(None)

    async def _write(self, handover: asyncio.Queue[bytes | None], send: Send) -> None:
        while True:
            frame: bytes | None = PING
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.keep_alive):
                    frame = await handover.get()  # a cancelled get leaves the frame queued
            if frame is None:
                break
            try:
                async with asyncio.timeout(self.stalled):
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
            except TimeoutError:
                logger.warning("event stream closed: the client read nothing for %.0f s",
                               self.stalled)
                raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _closed(frames: AsyncIterator[bytes]) -> None:
    aclose = getattr(frames, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
