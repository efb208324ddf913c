"""The order of the upstream policies, in one place: order is behaviour.

    in-flight dedup → cache → observe → retry → circuit breaker → concurrency limit → network

* De-duplication is outermost: concurrent identical requests share one cache lookup, one
  upstream call and one cache write, so a request arriving while the answer is being stored
  cannot miss both the cache and the shared call.
* The cache comes next: a fresh entry costs nothing, and a stale one can answer for a failure
  anywhere below, an open breaker included.
* Observation (metrics, the request's usage, a span, a line per failure) sits below the cache,
  so it counts only calls the cache did not answer (the cache counts its own hits), and above
  retries and the breaker, so it sees a call whole: its time with every backoff, each try the
  retry layer tried again (noted on the request), and the breaker's or the queue's refusals,
  which never reach the network. Counting each try sent, it counts what the upstream saw.
* Retries wrap the breaker: every try counts towards it, and an open breaker stops the retries.
* The limit is innermost: only requests really sent hold a slot. The breaker stays outside it,
  so that an open breaker fails a request at once instead of after a wait in the queue; the
  limit asks the breaker again once a request has its slot (it may have opened meanwhile).

The client (:class:`~gateway.upstream.client.UpstreamClient`) asks the cache layer for a fresh
entry before it builds a request: a warm call never enters the stack. The network at the bottom
is :class:`~gateway.upstream.network.NetworkTransport` (HTTP/1.1 behind httpx's API).

A policy that is off has no layer: no retries (``max_retries = 0``), no cache (both TTLs 0), no
de-duplication (``dedup = false``). Observation is always there: the request's usage feeds its
log line and ``extensions.cost``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from gateway.caches.store import ResponseStore
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import SourceConfig
from gateway.credentials import fingerprint
from gateway.observability.metrics import SourceMetrics
from gateway.upstream.breaker import BreakerPolicy, BreakerTransport, SourceHealth
from gateway.upstream.cache import CachePolicy, CacheTransport
from gateway.upstream.dedup import DedupTransport
from gateway.upstream.limit import ConcurrencyLimitTransport
from gateway.upstream.network import NetworkTransport
from gateway.upstream.observe import ObserveTransport
from gateway.upstream.retry import RetryPolicy, RetryTransport

if TYPE_CHECKING:
    from gateway.observability.tracing import Tracing

__all__ = ["build_transport", "health_for"]


def health_for(source: SourceConfig, *, clock: Clock = SYSTEM_CLOCK) -> SourceHealth:
    policy = BreakerPolicy(threshold=source.breaker_threshold,
                           failure_rate=source.breaker_failure_rate,
                           window=source.breaker_window_seconds,
                           reset=source.breaker_reset_seconds)
    return SourceHealth(source.name, policy, clock=clock)


def build_transport(source: SourceConfig, *, store: ResponseStore, health: SourceHealth,
                    network: httpx.AsyncBaseTransport | None = None,
                    clock: Clock = SYSTEM_CLOCK, metrics: SourceMetrics | None = None,
                    tracing: Tracing | None = None) -> httpx.AsyncBaseTransport:
    """The transport stack of one source (``network`` replaces the real HTTP transport;
    ``metrics``: the source's metrics, if any; ``tracing``: spans, if configured)."""
    credential = fingerprint(source.secret())
    transport: httpx.AsyncBaseTransport = network or NetworkTransport(
        max_connections=source.max_concurrency, clock=clock)
    transport = ConcurrencyLimitTransport(transport, limit=source.max_concurrency,
                                          max_queue=source.max_queue, health=health,
                                          clock=clock)
    transport = BreakerTransport(transport, health=health)
    if source.max_retries > 0:
        transport = RetryTransport(transport, policy=RetryPolicy(
            max_retries=source.max_retries, backoff=source.retry_backoff_seconds,
            max_backoff=source.retry_max_backoff_seconds,
            retry_after_cap=source.retry_after_cap_seconds), clock=clock)
    transport = ObserveTransport(transport, source=source.name, metrics=metrics, tracing=tracing,
                                 clock=clock)
    if source.cache_ttl_seconds > 0 or source.group_cache_ttl_seconds > 0:
        transport = CacheTransport(transport, store=store, source=source.name,
                                   credential=credential,
                                   policy=CachePolicy(product_ttl=source.cache_ttl_seconds,
                                                      group_ttl=source.group_cache_ttl_seconds,
                                                      stale_grace=source.stale_grace_seconds),
                                   clock=clock, metrics=metrics)
    if not source.dedup:
        return transport
    return DedupTransport(transport, source=source.name, credential=credential, clock=clock,
                          metrics=metrics)
