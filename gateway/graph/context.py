"""The one request context that travels from the HTTP edge to the upstream client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from gateway.config import Config

__all__ = ["GatewayContext"]


@dataclass
class GatewayContext:
    """Everything a resolver may use for one GraphQL request.

    Built per request by the HTTP edge; per-request loaders are created lazily and live here.
    """

    config: Config
    request: Request | None = None
    language: str | None = None  # the client's Accept-Language, passed to upstreams
    request_id: str = ""
    loaders: dict[str, Any] = field(default_factory=dict)
