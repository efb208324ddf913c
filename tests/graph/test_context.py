"""GatewayContext.report: each source failure once, with how often it happened, in linear time."""

from __future__ import annotations

import time

from gateway.errors import UpstreamTimeout, UpstreamUnavailable
from gateway.graph.context import GatewayContext
from gateway.graph.cursors import CursorCodec
from gateway.scope import RequestScope


def context() -> GatewayContext:
    return GatewayContext(adapters={}, scope=RequestScope(), cursors=CursorCodec.random())


def test_the_same_failure_at_the_same_path_is_reported_once_with_a_count() -> None:
    ctx = context()
    for _ in range(3):
        ctx.report(UpstreamUnavailable("source 'a' failed", source="a"), ["nodes"])
    ctx.report(UpstreamTimeout("source 'a' did not answer", source="a"), ["nodes"])
    ctx.report(UpstreamUnavailable("source 'b' failed", source="b"), ["nodes"])
    ctx.report(UpstreamUnavailable("source 'a' failed", source="a"), ["other", 0])
    errors = ctx.errors
    assert [(e.path, (e.extensions or {}).get("code"), (e.extensions or {}).get("count"))
            for e in errors] == [
        (["nodes"], "UPSTREAM_UNAVAILABLE", 3), (["nodes"], "UPSTREAM_TIMEOUT", None),
        (["nodes"], "UPSTREAM_UNAVAILABLE", None), (["other", 0], "UPSTREAM_UNAVAILABLE", None)]
    assert (errors[0].extensions or {})["source"] == "a"


def test_reporting_is_linear_in_the_number_of_errors() -> None:
    """80,000 reports (half at distinct paths): quadratic matching took minutes."""
    ctx = context()
    started = time.perf_counter()
    for i in range(40_000):
        ctx.report(UpstreamUnavailable("failed", source="a"), ["a", i])
        ctx.report(UpstreamUnavailable("failed", source="a"), ["same"])
    assert time.perf_counter() - started < 5
    assert len(ctx.errors) == 40_001
    assert (ctx.errors[1].extensions or {})["count"] == 40_000
