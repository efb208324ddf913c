"""The SSE response itself (gateway/edge/sse.py), served on a real socket: keep-alive comments
while its frames are slow to come, and its frames closed as soon as the client leaves."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from gateway.edge.serving import ServerThread
from gateway.edge.sse import COMPLETE, EventStream, next_frame

KEEP_ALIVE = 0.05


def test_a_quiet_stream_gets_keep_alive_comments_and_a_gone_client_closes_it() -> None:
    closed = threading.Event()

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield next_frame(b'{"data":1}', "1-0")
            await asyncio.Event().wait()  # a subscription with nothing to say
            yield COMPLETE
        finally:
            closed.set()

    async def stream(request: Request) -> EventStream:
        return EventStream(frames(), keep_alive=KEEP_ALIVE)

    app = Starlette(routes=[Route("/", stream)])
    with ServerThread({"sse": app}) as servers, httpx.Client(timeout=10) as client:
        with client.stream("GET", servers.urls["sse"]) as response:
            lines = response.iter_lines()
            assert [next(lines) for _ in range(4)] == ["id: 1-0", "event: next",
                                                        'data: {"data":1}', ""]
            assert [next(lines) for _ in range(4)] == [": ping", "", ": ping", ""]
        # The client left: its frames are closed (and what they hold let go).
        assert closed.wait(10), "the frames outlived their client"
