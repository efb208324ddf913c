"""OpenTelemetry tracing, optional: ``pip install 'catalogue-gateway[tracing]'`` and ``[tracing]
enabled = true``.

* A span per GraphQL request (``graphql.operation``, named after its operation), continuing the
  client's W3C ``traceparent`` when it sends one; attributes: operation name, request id,
  outcome, and per source the upstream requests and cache hits it cost.
* A child span per upstream call the cache did not answer (``GET /productGroup/{id}``, made by
  :class:`~gateway.upstream.observe.ObserveTransport`): source, route template, the cache's
  result, the answer's status. Its ``traceparent`` goes upstream with the call.
* Spans go to an OTLP collector over HTTP (``exporter = "otlp"``, ``endpoint``), or to stdout
  (``"console"``); tests pass a provider of their own with the SDK's in-memory exporter.

Nothing here runs when tracing is off: the endpoint and the transport check for None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import httpx

from gateway.config import ConfigError, TracingSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from gateway.scope import RequestScope

__all__ = ["Tracing", "tracing_for"]

SCOPE_NAME = "catalogue-gateway"


class Tracing:
    """Spans of one app, from ``provider``."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer = provider.get_tracer(SCOPE_NAME)
        self.propagator = TraceContextTextMapPropagator()
        self._server, self._client = SpanKind.SERVER, SpanKind.CLIENT

    @contextlib.contextmanager
    def operation_span(self, headers: Mapping[str, str]) -> Iterator[Span]:
        """The GraphQL request's span, current while it runs (its upstream calls' parent)."""
        context = self.propagator.extract(headers)
        with self.tracer.start_as_current_span("graphql.operation", context=context,
                                               kind=self._server) as span:
            yield span

    def finish_operation(self, span: Span, operation: str, request_id: str,
                         scope: RequestScope | None, outcome: str) -> None:
        span.update_name(f"graphql {operation}")
        span.set_attribute("graphql.operation.name", operation)
        span.set_attribute("gateway.request_id", request_id)
        span.set_attribute("gateway.outcome", outcome)
        for source, usage in (scope.usage.items() if scope is not None else ()):
            span.set_attribute(f"gateway.upstream.{source}.requests", usage.requests)
            span.set_attribute(f"gateway.upstream.{source}.cache_hits", usage.cache_hits)

    @contextlib.contextmanager
    def upstream_span(self, request: httpx.Request, source: str, route: str,
                      cache: object) -> Iterator[Span]:
        """An upstream call's span; its context goes upstream in ``traceparent``."""
        attributes: dict[str, str] = {"gateway.source": source, "url.template": route,
                                      "http.request.method": request.method,
                                      "gateway.cache": str(cache or "off")}
        with self.tracer.start_as_current_span(f"{request.method} {route}", kind=self._client,
                                               attributes=attributes) as span:
            self.propagator.inject(request.headers)
            yield span

    def shutdown(self) -> None:
        """Export what is left (the provider's processors flush on shutdown)."""
        self.provider.shutdown()


def tracing_for(settings: TracingSettings) -> Tracing | None:
    """The configured tracing, or None when ``[tracing]`` is off."""
    if not settings.enabled:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError:
        raise ConfigError("[tracing] enabled: needs the tracing extra: "
                          "pip install 'catalogue-gateway[tracing]'") from None
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)))
    exporter: SpanExporter
    if settings.exporter == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = (OTLPSpanExporter(endpoint=settings.endpoint) if settings.endpoint
                    else OTLPSpanExporter())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)
