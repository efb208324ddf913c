"""In-flight de-duplication: concurrent identical upstream requests in one process become one.

Requests are identical when their cache key is (source, credential, path, query, language). The
first caller's request goes on; the others wait for its answer and get a copy. Each waiter keeps
its own deadline: a waiter whose deadline passes gives up without cancelling the shared call.
"""

from __future__ import annotations

import asyncio

import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.upstream.cache import cache_key
from gateway.upstream.extensions import DEADLINE
from gateway.upstream.headers import decoded_body_headers
from gateway.upstream.layer import Layer

__all__ = ["DedupTransport"]

Answer = tuple[int, list[tuple[str, str]], bytes, dict[str, object]]


class DedupTransport(Layer):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, source: str, credential: str,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(inner)
        self.source = source
        self.credential = credential
        self.clock = clock
        self._inflight: dict[str, asyncio.Task[Answer]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return await self.inner.handle_async_request(request)
        key = cache_key(self.source, self.credential, request)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(request))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        status, headers, body, extensions = await self._within_deadline(task, request)
        return httpx.Response(status, headers=headers, content=body, request=request,
                              extensions=dict(extensions))

    async def _fetch(self, request: httpx.Request) -> Answer:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        return (response.status_code, decoded_body_headers(response.headers), body,
                dict(response.extensions))

    async def _within_deadline(self, task: asyncio.Task[Answer], request: httpx.Request
                               ) -> Answer:
        deadline = request.extensions.get(DEADLINE)
        if not isinstance(deadline, float):
            return await asyncio.shield(task)
        left = max(0.0, deadline - self.clock.monotonic())
        try:
            return await asyncio.wait_for(asyncio.shield(task), left)
        except TimeoutError:
            raise httpx.ReadTimeout("deadline passed while waiting for a shared call",
                                    request=request) from None
