"""``[metrics]``, ``[logging]`` and ``[tracing]``: what the gateway tells its operators."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.config.base import Strict

__all__ = ["LogLevel", "LoggingSettings", "MetricsSettings", "TracingSettings"]


class MetricsSettings(Strict):
    """Prometheus metrics (gateway/observability/metrics.py)."""

    enabled: bool = True  # /metrics on the gateway's port (or on `port`)
    # Serve /metrics on this port of [server] host instead of the gateway's port (`serve` only;
    # keeps metrics off a port the public reaches).
    port: int | None = Field(default=None, ge=1, le=65535)
    # Operation names that get their own label; later names count under "other" (a client
    # chooses operation names: unbounded labels would grow Prometheus without end).
    max_operation_names: int = Field(default=100, ge=0, le=10_000)


LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class LoggingSettings(Strict):
    """The gateway's log lines (gateway/observability/logs.py)."""

    level: LogLevel = "info"  # of the gateway's and the server's log lines
    # "auto": human-readable lines when stderr is a terminal (make run), JSON lines otherwise.
    format: Literal["auto", "json", "console"] = "auto"


class TracingSettings(Strict):
    """OpenTelemetry tracing (gateway/observability/tracing.py; needs the `tracing` extra
    installed)."""

    enabled: bool = False  # spans of each request, its resolvers and upstream calls
    # "otlp": OTLP over HTTP to `endpoint` (default: the SDK's, http://localhost:4318, or
    # OTEL_EXPORTER_OTLP_ENDPOINT); "console": spans printed to stdout (trying it out).
    exporter: Literal["otlp", "console"] = "otlp"
    endpoint: str | None = None
    # The service.name resource attribute of every span.
    service_name: str = Field(default="catalogue-gateway", min_length=1, max_length=100)
    sample_ratio: float = Field(default=1.0, ge=0, le=1)  # of traces the client did not start
