"""The one place that talks HTTP to upstreams: the client, its policy layers, paging plans."""

from __future__ import annotations

from gateway.upstream.client import UpstreamClient

__all__ = ["UpstreamClient"]
