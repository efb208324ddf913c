"""What each upstream call cost, seen from below the cache: counted, timed, traced, logged.

For every call the cache did not answer, :class:`ObserveTransport`

* counts the tries that went to the upstream into the GraphQL request's
  :class:`~gateway.scope.SourceUsage` (the ``USAGE`` extension) with the call's time;
* counts ``gateway_upstream_requests_total`` by route template, status class and outcome, each
  try retried as ``retried``, and times the call (:mod:`gateway.observability.metrics`);
* with tracing, makes a span for the call (a child of the GraphQL operation's span) and sends
  its W3C ``traceparent`` upstream (:mod:`gateway.observability.tracing`);
* logs a line per failed call on ``gateway.upstream`` (warning): source, route, status,
  outcome, request id; never the URL, its query string or a header.

Its place in the stack (:mod:`gateway.upstream.stack`) is below the cache and above retries and
the breaker: see there why.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import GatewayError, UpstreamTimeout
from gateway.observability.metrics import SourceMetrics
from gateway.scope import SourceUsage
from gateway.upstream.extensions import CACHE_RESULT, RETRIED, ROUTE, USAGE
from gateway.upstream.layer import Layer

if TYPE_CHECKING:
    from gateway.observability.tracing import Tracing

__all__ = ["ObserveTransport", "status_class"]

logger = logging.getLogger("gateway.upstream")
STATUS_CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int | None) -> str:
    """``2xx`` … ``5xx`` of an HTTP status; ``none`` when no answer came."""
    if status is None or not 100 <= status < 600:
        return "none"
    return STATUS_CLASSES[status // 100]


class ObserveTransport(Layer):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, source: str,
                 metrics: SourceMetrics | None = None, tracing: Tracing | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(inner)
        self.source = source
        self.metrics = metrics
        self.tracing = tracing
        self.clock = clock

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.tracing is None:
            return await self._observed(request)
        route = request.extensions.get(ROUTE) or request.url.path
        with self.tracing.upstream_span(request, self.source, str(route),
                                        request.extensions.get(CACHE_RESULT)) as span:
            response = await self._observed(request)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    async def _observed(self, request: httpx.Request) -> httpx.Response:
        started = self.clock.monotonic()
        try:
            response = await self.inner.handle_async_request(request)
        except asyncio.CancelledError:
            self._done(request, started, None, "cancelled", sent=True)
            raise
        except (httpx.TimeoutException, UpstreamTimeout) as exc:
            # A timeout of the gateway's own (a deadline passed in the queue): nothing was sent.
            self._done(request, started, None, "timeout", sent=not isinstance(exc, GatewayError))
            raise
        except GatewayError:
            self._done(request, started, None, "refused", sent=False)  # breaker, full queue
            raise
        except httpx.HTTPError:
            self._done(request, started, None, "error", sent=True)
            raise
        status = response.status_code
        self._done(request, started, status, "ok" if status < 400 else "error", sent=True)
        return response

    def _done(self, request: httpx.Request, started: float, status: int | None, outcome: str,
              *, sent: bool) -> None:
        seconds = self.clock.monotonic() - started
        extensions = request.extensions
        retried: list[str] | None = extensions.get(RETRIED)
        usage: SourceUsage | None = extensions.get(USAGE)
        if usage is not None:
            usage.requests += sent + (len(retried) if retried else 0)
            usage.seconds += seconds
        metrics = self.metrics
        route = extensions.get(ROUTE) or request.url.path
        if metrics is not None:
            if retried:
                for tried in retried:
                    metrics.request(route, tried, "retried").inc()
            metrics.request(route, status_class(status), outcome).inc()
            metrics.duration(route).observe(seconds)
        if outcome not in ("ok", "cancelled"):
            logger.warning("upstream request failed", extra={
                "source": self.source, "route": route, "status": status, "outcome": outcome,
                "retries": len(retried) if retried else 0,
                "duration_ms": round(seconds * 1000, 1),
                "request_id": request.headers.get("x-request-id", "")})
