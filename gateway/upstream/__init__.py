"""The one place that talks HTTP to upstreams: clients, request scope, paging plans."""

from __future__ import annotations

from gateway.upstream.client import RequestScope, UpstreamClient

__all__ = ["RequestScope", "UpstreamClient"]
