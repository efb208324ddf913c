"""The demo: the four emulators and a gateway configured for them, in one process.

``python -m gateway demo`` (what ``make run`` runs) serves the gateway on ``--port`` and each
emulator on a port the OS picks; the gateway's configuration is built from those ports.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from gateway.config import Config, parse_config
from gateway.emulators import DEMO_TOKENS, KINDS, create_emulator
from gateway.emulators.common import FaultPlan
from gateway.serving import BoundApp, bind

__all__ = ["DEMO_CORS_REGEX", "demo_config", "demo_servers"]

# Browser frontends on any local port may call the demo gateway.
DEMO_CORS_REGEX = r"^http://(localhost|127\.0\.0\.1)(:\d+)?$"


def demo_config(urls: Mapping[str, str], *, host: str = "127.0.0.1", port: int = 8000,
                defaults: Mapping[str, Any] | None = None, cache_url: str = "memory://",
                request_timeout: float = 15.0) -> Config:
    """A gateway configuration with one source per emulator, named after its kind.

    ``defaults`` is the ``[defaults]`` table (source tuning: TTLs, retries, breaker…). Cursors
    are signed with a secret made at start (the demo's cursors die with it).
    """
    return parse_config(
        {
            # The development profile: GraphiQL, introspection, suggestions, a detailed
            # /readyz, GET without a preflight header; a cursor secret of its own per process.
            "server": {"profile": "development", "host": host, "port": port,
                       "cors_origin_regex": DEMO_CORS_REGEX,
                       "request_timeout_seconds": request_timeout, "access_log": True,
                       "cursor_secret": secrets.token_urlsafe(32)},
            "cache": {"url": cache_url},
            "defaults": dict(defaults or {}),
            "sources": [
                {"name": kind, "kind": kind, "base_url": urls[kind], "token": DEMO_TOKENS[kind]}
                for kind in KINDS
            ],
        },
        origin="<demo>",
    )


def demo_servers(
    *, host: str = "127.0.0.1", port: int = 8000, latency_ms: int = 0
) -> tuple[Config, dict[str, BoundApp]]:
    """The emulators (with ``latency_ms`` added to every response) and their bound sockets."""
    emulators = {kind: BoundApp(create_emulator(kind), bind("127.0.0.1", 0)) for kind in KINDS}
    for bound in emulators.values():
        faults: FaultPlan = bound.app.state.faults  # type: ignore[attr-defined]
        faults.set(latency_ms=latency_ms)
    config = demo_config({kind: b.url for kind, b in emulators.items()}, host=host, port=port)
    return config, emulators
