"""A concurrency limit per source: one slow upstream cannot take every connection and task.

At most ``limit`` requests are in flight to the source; others wait for a slot, in order:

* at most ``max_queue`` of them: past that a request fails at once (``UPSTREAM_UNAVAILABLE``,
  retryable): a queue that long would not drain within anyone's deadline;
* each until its request's deadline (the ``DEADLINE`` extension, on the layer's clock): then it
  fails with ``UPSTREAM_TIMEOUT`` without having asked the upstream;
* the breaker is asked again once a slot is free: it may have opened while the request waited
  (the breaker layer sits outside this one, so that an open breaker fails requests at once
  instead of queueing them; see :mod:`gateway.upstream.stack`).

Neither a full queue nor a wait past the deadline counts against the source's health: neither
says anything about the upstream.
"""

from __future__ import annotations

import asyncio

import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import UpstreamTimeout, UpstreamUnavailable
from gateway.upstream.breaker import SourceHealth
from gateway.upstream.extensions import DEADLINE
from gateway.upstream.layer import Layer

__all__ = ["ConcurrencyLimitTransport"]


class ConcurrencyLimitTransport(Layer):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, limit: int, max_queue: int,
                 health: SourceHealth, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(inner)
        self.limit = limit
        self.max_queue = max_queue
        self.health = health
        self.clock = clock
        self._slots = asyncio.Semaphore(limit)
        self._waiting = 0

    @property
    def source(self) -> str:
        return self.health.source

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._acquire(request)
        try:
            self.health.still_admits()
            response = await self.inner.handle_async_request(request)
            await response.aread()  # the slot is held until the body is in
            return response
        finally:
            self._slots.release()

    async def _acquire(self, request: httpx.Request) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: at once
            return
        if self._waiting >= self.max_queue:
            raise UpstreamUnavailable(
                f"source '{self.source}' has too many requests waiting "
                f"({self.limit} in flight, {self._waiting} queued); try again shortly",
                source=self.source, retry_after=1.0)
        deadline = request.extensions.get(DEADLINE)
        left = (max(0.0, deadline - self.clock.monotonic()) if isinstance(deadline, float)
                else None)
        self._waiting += 1
        try:
            # A timeout scope, not wait_for: on Python 3.11 that wraps the wait in a task of
            # its own, for every request that queues (under load, most of them).
            async with asyncio.timeout(left):
                await self._slots.acquire()
        except TimeoutError:
            raise UpstreamTimeout(
                f"source '{self.source}' was not asked: the request's deadline passed while it "
                f"waited for one of the {self.limit} connections to the source",
                source=self.source) from None
        finally:
            self._waiting -= 1
