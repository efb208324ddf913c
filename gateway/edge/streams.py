"""Subscriptions over Server-Sent Events: an admitted subscription's results as a stream
(:class:`~gateway.edge.sse.EventStream`), one ``next`` event per result, each an event's with its
id as the SSE ``id`` (a ``Last-Event-ID`` resumes after it), then ``complete``: until the
subscription or the client ends it. The open streams are known, so a stopping process can wait
for their last words.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from strawberry import Schema

from gateway.edge.bodies import limited, result_body
from gateway.edge.observe import Exchange
from gateway.edge.sse import COMPLETE, EventStream, next_frame
from gateway.errors import ErrorCode
from gateway.graph.context import GatewayContext

__all__ = ["EventStreams"]


class EventStreams:
    """The SSE streams of subscriptions, open now."""

    def __init__(self, schema: Schema, *, max_bytes: int) -> None:
        self.schema = schema
        self.max_bytes = max_bytes
        self.open: set[EventStream] = set()

    async def subscribe(self, params: dict[str, Any], context: GatewayContext,
                        exchange: Exchange) -> EventStream:
        """A subscription over SSE: its results as events, until it or the client ends."""
        results = await self.schema.subscribe(
            params["query"], variable_values=params.get("variables"), context_value=context,
            operation_name=params.get("operationName"))
        exchange.outcome, exchange.subscription = "ok", True
        return EventStream(self._frames(results, context, exchange), open_streams=self.open)

    async def _frames(self, results: AsyncIterator[Any], context: GatewayContext,
                      exchange: Exchange) -> AsyncIterator[bytes]:
        """Each result as a ``next`` event (an event's with its id), then ``complete``."""
        async with contextlib.aclosing(results):  # type: ignore[type-var]
            async for result in results:
                body = limited(result_body(result.data, result.errors, result.extensions,
                                           ErrorCode.GRAPHQL_VALIDATION_FAILED,
                                           exchange.loggable_codes), self.max_bytes)
                # Read now: the context moves to the next event once this one was written.
                event_id = getattr(context, "event_id", None) if result.data is not None \
                    else None
                yield next_frame(body, event_id)
        yield COMPLETE

    async def ended(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) for the open streams to end."""
        waits = [asyncio.ensure_future(stream.ended.wait()) for stream in self.open]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for wait in pending:
            wait.cancel()
