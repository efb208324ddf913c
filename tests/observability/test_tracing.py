"""Tracing with the SDK's in-memory exporter: one span per GraphQL operation continuing the
client's ``traceparent``, one child span per upstream request, the header seen upstream."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.config import ConfigError, TracingSettings
from gateway.emulators import KINDS
from gateway.observability.tracing import Tracing, tracing_for
from tests.conftest import UNCACHED, RunningEmulator
from tests.helpers import post
from tests.observed import CROSS, config_for, serving

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def test_an_operation_span_parents_one_span_per_upstream_request(
        emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator]) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with serving(config_for(emulator_servers, defaults=UNCACHED), Tracing(provider)) as (_, url):
        response = post(url, CROSS, headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"})
        assert response.json()["data"]["productGroups"]["nodes"]
    spans = exporter.get_finished_spans()
    [operation] = [s for s in spans if s.kind is SpanKind.SERVER]
    upstream = [s for s in spans if s.kind is SpanKind.CLIENT]
    records = [r for kind in KINDS for r in emulator(kind).log.records]
    assert operation.name == "graphql CrossSourceGroups"
    # The client's trace goes on: same trace id, the client's span as the parent.
    assert f"{operation.context.trace_id:032x}" == TRACE_ID
    assert operation.parent is not None and f"{operation.parent.span_id:016x}" == CLIENT_SPAN
    assert len(upstream) == len(records) > 1
    for span in upstream:
        assert span.parent is not None and span.parent.span_id == operation.context.span_id
        assert span.attributes is not None
        assert span.attributes["gateway.source"] in KINDS
        assert "?" not in str(span.attributes["url.template"])
        assert span.attributes["http.response.status_code"] == 200
    # Each upstream request carried its own span's context.
    sent = sorted(r.headers["traceparent"] for r in records)
    assert sent == sorted(f"00-{TRACE_ID}-{s.context.span_id:016x}-01" for s in upstream)
    attributes = dict(operation.attributes or {})
    counted = [value for name, value in attributes.items() if name.endswith(".requests")]
    assert sum(int(str(value)) for value in counted) == len(records)


def test_without_a_client_trace_a_new_one_starts(
        emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator]) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with serving(config_for(emulator_servers, defaults=UNCACHED), Tracing(provider)) as (_, url):
        post(url, "query Sources { sources { id } }")
    [operation] = exporter.get_finished_spans()
    assert operation.parent is None and operation.name == "graphql Sources"


def test_tracing_is_off_unless_configured() -> None:
    assert tracing_for(TracingSettings()) is None
    tracing = tracing_for(TracingSettings(enabled=True, exporter="console"))
    assert tracing is not None
    tracing.shutdown()


def test_tracing_without_the_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(ConfigError, match=r"catalogue-gateway\[tracing\]"):
        tracing_for(TracingSettings(enabled=True))
