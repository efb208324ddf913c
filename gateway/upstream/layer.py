"""The base of every policy layer: a transport wrapping a transport."""

from __future__ import annotations

import httpx

__all__ = ["Layer"]


class Layer(httpx.AsyncBaseTransport):
    """Holds the inner transport and closes it; subclasses implement ``handle_async_request``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def aclose(self) -> None:
        await self.inner.aclose()
