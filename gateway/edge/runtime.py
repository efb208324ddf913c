"""What one configuration of a gateway process holds (a generation: until a reload replaces it):
the cache store, the memo of what is read from upstream answers, and per source its health and
adapter (with the upstream client and transport stack behind it). The metrics are the
process's, handed from one generation to the next, and so is the store while ``[cache]`` stays.

Example::

    runtime = Runtime.build(load_config("gateway.toml"))
    ...
    await runtime.aclose()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway import __version__
from gateway.caches.bounded import ByteBoundedLRU
from gateway.caches.store import ResponseStore
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import Config, ServerSettings
from gateway.graph.cursors import CursorCodec
from gateway.observability.metrics import Metrics
from gateway.sources import SourceAdapter, build_adapter
from gateway.upstream.breaker import BreakerState, SourceHealth
from gateway.upstream.client import Memo
from gateway.upstream.stack import build_transport, health_for

if TYPE_CHECKING:
    from gateway.observability.tracing import Tracing

__all__ = ["Runtime", "cursor_codec"]

logger = logging.getLogger("gateway.runtime")


def cursor_codec(server: ServerSettings) -> CursorCodec:
    """The codec of ``[server] cursor_secret`` (and the previous secrets), or of a random
    secret of this process when none is configured."""
    if server.cursor_secret is None:
        logger.info("no [server] cursor_secret: cursors are signed with a secret of this "
                    "process only (they stop working when it restarts)")
        return CursorCodec.random()
    return CursorCodec(server.cursor_secret.get_secret_value(),
                       [s.get_secret_value() for s in server.previous_cursor_secrets])


@dataclass
class Runtime:
    config: Config
    store: ResponseStore
    adapters: dict[str, SourceAdapter]
    health: dict[str, SourceHealth]
    clock: Clock = SYSTEM_CLOCK
    cursors: CursorCodec = field(default_factory=CursorCodec.random)
    metrics: Metrics | None = None  # [metrics] enabled
    tracing: Tracing | None = None  # [tracing] enabled

    @classmethod
    def build(cls, config: Config, *, clock: Clock = SYSTEM_CLOCK,
              tracing: Tracing | None = None, previous: Runtime | None = None) -> Runtime:
        """The runtime of ``config``; after a reload (``previous``), with the metrics of the
        process and, while ``[cache]`` is unchanged, the same upstream store."""
        if previous is not None and previous.config.cache == config.cache:
            store = previous.store
        else:
            store = ResponseStore(config.cache, namespace=config.cache.namespace,
                                  clock=clock, memory_max_bytes=config.cache.memory_max_bytes)
        memo: Memo = ByteBoundedLRU(config.cache.decoded_max_bytes)  # one bound for all sources
        # A source the reload left as it was keeps its breaker (open stays open).
        kept = {s.name: previous.health[s.name] for s in config.sources
                if previous is not None and s in previous.config.sources}
        health = {s.name: kept.get(s.name) or health_for(s, clock=clock)
                  for s in config.sources}
        if previous is not None:
            metrics = previous.metrics
        else:
            metrics = (Metrics(max_operation_names=config.metrics.max_operation_names)
                       if config.metrics.enabled else None)
        adapters = {}
        for s in config.sources:
            source_metrics = None if metrics is None else metrics.source(s.name)
            if source_metrics is not None and s.name not in kept:
                health[s.name].watch(source_metrics.breaker)
            transport = build_transport(s, store=store, health=health[s.name], clock=clock,
                                        metrics=source_metrics, tracing=tracing)
            adapters[s.name] = build_adapter(s, transport=transport, clock=clock, memo=memo)
        return cls(config, store, adapters, health, clock, cursor_codec(config.server), metrics,
                   tracing)

    def readiness(self) -> dict[str, object]:
        """Each source's breaker state, last error and last success (``/readyz``).

        ``status``: "ready"; "degraded" while a breaker is not closed; "unready" while every
        breaker is open (nothing could be answered).
        """
        sources = {name: h.report() for name, h in self.health.items()}
        states = [h.state for h in self.health.values()]
        status = "ready"
        if all(state is BreakerState.OPEN for state in states):
            status = "unready"
        elif any(state is not BreakerState.CLOSED for state in states):
            status = "degraded"
        return {"status": status, "version": __version__, "cache": self.store.url_kind,
                "sources": sources}

    async def aclose(self, *, keep_store: bool = False) -> None:
        """Close the upstream clients, and the store unless another runtime took it over."""
        for adapter in self.adapters.values():
            await adapter.client.aclose()
        if not keep_store:
            await self.store.close()
