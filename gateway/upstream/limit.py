"""A concurrency limit per source: one slow upstream cannot take every connection and task."""

from __future__ import annotations

import asyncio

import httpx

from gateway.upstream.layer import Layer

__all__ = ["ConcurrencyLimitTransport"]


class ConcurrencyLimitTransport(Layer):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, limit: int) -> None:
        super().__init__(inner)
        self._slots = asyncio.Semaphore(limit)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self._slots:
            response = await self.inner.handle_async_request(request)
            await response.aread()  # the slot is held until the body is in
            return response
