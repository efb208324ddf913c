"""Prometheus metrics: what the gateway answers, what each source costs, what the caches save.

One :class:`Metrics` per app, in a registry of its own (several apps may live in one process:
the tests). ``GET /metrics`` (or ``[metrics] port``) serves them in the text format.

==========================================  =================================  ==================
metric                                      labels                             counts
==========================================  =================================  ==================
gateway_graphql_requests_total              operation, outcome                 GraphQL requests
gateway_graphql_request_duration_seconds    operation                          their latency
gateway_graphql_upstream_requests           (none)                             upstream requests
                                                                               per GraphQL request
gateway_upstream_requests_total             source, route, status_class,       upstream requests
                                            outcome                            (each try)
gateway_upstream_request_duration_seconds   source, route                      a call's latency,
                                                                               retries included
gateway_cache_lookups_total                 layer, source, result              cache lookups
gateway_upstream_dedup_joins_total          source                             calls shared
gateway_upstream_breaker_state              source, state                      processes whose
                                                                               breaker is in it
gateway_change_polls_total                  source, topic, outcome             change-feed polls
gateway_change_events_total                 source, topic, change              changes announced
gateway_subscriptions                       topic                              subscriptions open
==========================================  =================================  ==================

* ``operation``: the operation's name, for the first ``max_operation_names`` names seen (per
  process); later names count under ``other``, unnamed and unknown operations under ``(none)``:
  clients choose names, and every label value is a time series Prometheus keeps.
* ``outcome`` of a GraphQL request: ``ok`` (no error), ``partial`` (data and errors), ``error``
  (no data: a refused request, a parse or validation error), ``cancelled`` (the client left).
* ``route``: the adapter's path template (``/productGroup/{id}``), never the URL or its query.
* ``status_class``: ``2xx`` … ``5xx``, or ``none`` when no answer came (timeout, refused).
* ``outcome`` of an upstream request: ``ok`` (< 400), ``error`` (≥ 400, or the connection
  failed), ``timeout``, ``refused`` (the gateway did not send it: open breaker, full queue),
  ``retried`` (a try that failed and was tried again), ``cancelled`` (the GraphQL request left).
* ``layer``: ``response`` (the whole-response cache; source ``-``) or ``upstream``; ``result``:
  ``hit``, ``miss`` or ``stale`` (a stale entry answered for a failing upstream).
* ``outcome`` of a change poll: ``ok``, ``failed`` (the source failed; the next poll tries
  again) or ``lost`` (another process took the lease); a process that does not hold a source's
  lease makes no poll, and counts none.
* ``gateway_upstream_breaker_state``: 1 for the state each source's breaker is in (summed over
  worker processes: with ``--workers 2``, ``{state="closed"} 2`` when both are closed).

With ``serve --workers N`` every worker writes its numbers to files in
``$PROMETHEUS_MULTIPROC_DIR`` (the CLI makes a temporary one), and a scrape of any worker adds
them up (prometheus-client's multiprocess mode).

The hot path binds nothing per request: every label combination's child is made once and kept.
"""

from __future__ import annotations

import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from gateway import __version__

__all__ = ["CONTENT_TYPE", "MULTIPROC_ENV", "Metrics", "SourceMetrics", "multiprocess",
           "worker_exited"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER = "other"
NONE = "(none)"
NO_SOURCE = "-"  # the source label of the response cache: it answers for every source
BREAKER_STATES = ("closed", "open", "half-open")
NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")  # a GraphQL name, bounded
# Seconds: a cached answer takes ~1 ms, an uncached one tens, a slow source seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
REQUEST_COUNT_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100)


def multiprocess() -> bool:
    """Whether metrics live in files shared by worker processes (``serve --workers N``)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def worker_exited() -> None:
    """Drop this process's live gauges (its breaker states) from the shared numbers."""
    if multiprocess():
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class Metrics:
    """The gateway's metrics, in their own registry."""

    def __init__(self, *, max_operation_names: int = 100) -> None:
        # No `_created` series: a gauge per counter and histogram child, with its own HELP
        # line repeating the metric's, that no dashboard of ours reads (a process-wide switch
        # of prometheus_client).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        self.max_operation_names = max_operation_names
        registry = self.registry
        self.graphql_requests = Counter(
            "gateway_graphql_requests", "GraphQL requests by operation name and outcome",
            ["operation", "outcome"], registry=registry)
        self.graphql_duration = Histogram(
            "gateway_graphql_request_duration_seconds", "GraphQL request latency",
            ["operation"], buckets=LATENCY_BUCKETS, registry=registry)
        self.graphql_first_part = Histogram(
            "gateway_graphql_first_part_seconds",
            "Time to the first part of an answer in parts (@defer, @stream); the request "
            "duration is the time to its last", ["operation"], buckets=LATENCY_BUCKETS,
            registry=registry)
        self.graphql_upstream = Histogram(
            "gateway_graphql_upstream_requests", "Upstream requests one GraphQL request made",
            buckets=REQUEST_COUNT_BUCKETS, registry=registry)
        self.upstream_requests = Counter(
            "gateway_upstream_requests",
            "Upstream requests by source, route template, status class and outcome",
            ["source", "route", "status_class", "outcome"], registry=registry)
        self.upstream_duration = Histogram(
            "gateway_upstream_request_duration_seconds",
            "Upstream call latency (retries included) by source and route template",
            ["source", "route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.cache_lookups = Counter(
            "gateway_cache_lookups", "Cache lookups by layer, source and result",
            ["layer", "source", "result"], registry=registry)
        self.dedup_joins = Counter(
            "gateway_upstream_dedup_joins",
            "Upstream calls joined while another request's identical call was in flight",
            ["source"], registry=registry)
        self.breaker = Gauge(
            "gateway_upstream_breaker_state",
            "1 for the state of each source's circuit breaker (summed over processes)",
            ["source", "state"], multiprocess_mode="livesum", registry=registry)
        self.change_polls = Counter(
            "gateway_change_polls", "Change-feed polls by source, topic and outcome",
            ["source", "topic", "outcome"], registry=registry)
        self.change_events = Counter(
            "gateway_change_events", "Changes announced by source, topic and change",
            ["source", "topic", "change"], registry=registry)
        self.subscriptions = Gauge(
            "gateway_subscriptions", "Subscriptions open, by topic (summed over processes)",
            ["topic"], multiprocess_mode="livesum", registry=registry)
        Gauge("gateway_build_info", "1, labelled with the running version",
              ["version"], multiprocess_mode="max", registry=registry).labels(__version__).set(1)
        self.config_reloads = Counter(
            "gateway_config_reloads", "Configuration reloads (SIGHUP) by outcome: applied, "
            "refused (the file failed its checks; the running configuration stays)",
            ["outcome"], registry=registry)
        self.response_hit = self.cache_lookups.labels("response", NO_SOURCE, "hit")
        self.response_miss = self.cache_lookups.labels("response", NO_SOURCE, "miss")
        self._operations: dict[str, str] = {}
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def operation_label(self, name: str | None) -> str:
        """The label of an operation name: itself while few names are known, else bounded."""
        if not name:
            return NONE
        label = self._operations.get(name)
        if label is not None:
            return label
        if not NAME.fullmatch(name):
            return NONE
        if len(self._operations) >= self.max_operation_names:
            return OTHER  # not remembered: the table stays bounded
        self._operations[name] = name
        return name

    def graphql(self, operation: str | None, outcome: str, seconds: float,
                upstream_requests: int, first_part: float | None = None) -> None:
        """One GraphQL request answered (or abandoned); ``first_part``: the seconds to the
        first part of an answer in parts."""
        label = self.operation_label(operation)
        if first_part is not None:
            self.graphql_first_part.labels(label).observe(first_part)
        children = self._children.get((label, outcome))
        if children is None:
            children = self._children[(label, outcome)] = (
                self.graphql_requests.labels(label, outcome), self.graphql_duration.labels(label))
        children[0].inc()
        children[1].observe(seconds)
        self.graphql_upstream.observe(upstream_requests)

    def source(self, name: str) -> SourceMetrics:
        return SourceMetrics(self, name)

    def exposition(self) -> bytes:
        """The text format of every metric (in multiprocess mode, of every worker, added up)."""
        if multiprocess():
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class SourceMetrics:
    """One source's metric children, made once each and kept."""

    def __init__(self, metrics: Metrics, source: str) -> None:
        self.metrics = metrics
        self.source = source
        lookups = metrics.cache_lookups
        self.cache_hit = lookups.labels("upstream", source, "hit")
        self.cache_miss = lookups.labels("upstream", source, "miss")
        self.cache_stale = lookups.labels("upstream", source, "stale")
        self.dedup_join = metrics.dedup_joins.labels(source)
        self._requests: dict[tuple[str, str, str], Counter] = {}
        self._durations: dict[str, Histogram] = {}
        self._breaker = {state: metrics.breaker.labels(source, state) for state in BREAKER_STATES}

    def request(self, route: str, status_class: str, outcome: str) -> Counter:
        """The counter of upstream requests with these labels."""
        key = (route, status_class, outcome)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.metrics.upstream_requests.labels(
                self.source, route, status_class, outcome)
        return child

    def duration(self, route: str) -> Histogram:
        child = self._durations.get(route)
        if child is None:
            child = self._durations[route] = self.metrics.upstream_duration.labels(
                self.source, route)
        return child

    def breaker(self, state: str) -> None:
        """The source's breaker is now in ``state`` (a ``BreakerState``: the breaker sits
        below observability's users, and its states are strings)."""
        for name, child in self._breaker.items():
            child.set(1 if name == state else 0)
