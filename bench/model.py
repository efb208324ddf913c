"""What the benchmark measures, and what one run of it holds.

``ROWS`` are the contenders, one ``Row`` each (a new contender is one ``Row(...)`` line), with the
``Server`` that answers it; ``Sample`` is one timed run of one row, ``Upstream`` what the
emulators' logs hold after it, ``Bench`` one benchmark run's state (its processes, the exact
upstream figures per row). They are apart from ``bench/run.py``, which starts the processes and
measures, and ``bench/report.py``, which writes the results, because both read them.
"""

from __future__ import annotations

import argparse
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.scenarios import Scenario

# Requests of the exact upstream count (bench/run.py count_calls; the report quotes it): two
# rounds of 32 concurrent ones.
COUNTED = 64


@dataclass(frozen=True)
class Server:
    """How to run one contender's server. ``gateway`` servers get a generated config file."""

    name: str
    kind: str  # "gateway" | "ceiling" | "stock"
    cached: bool = False  # gateway: upstream caches warm-able (long TTLs) or off (TTL 0)
    compiled: bool = True  # gateway: compiled execution (False: graphql-core executes)
    response_cache: bool = False  # gateway: the whole-response cache
    redis: bool = False  # gateway: caches in the benchmark's Redis (else in memory)
    observed: bool = False  # gateway: metrics and a JSON log line per request (else both off)

    def path(self, scenario: Scenario) -> str:
        return f"/{scenario.name}" if self.kind == "ceiling" else "/graphql"


@dataclass(frozen=True)
class Row:
    """One row per scenario (and per upstream latency when ``upstream``).

    ``distinct``: every request carries its own tag, so no cache and no de-duplication can share
    work; ``calls``: "none" (a reference: no upstream), "zero" (all cached) or "cold" (exactly as
    many upstream calls per query as one query alone makes).
    """

    key: str
    label: str
    server: Server
    distinct: bool = False
    upstream: bool = True
    calls: str = "cold"
    # wrk without per-request Lua (see bench/wrk.lua), for rows whose rate would make that Lua
    # wrk's own bottleneck: the ceiling, and the response cache's hits (48 % of wrk's core at
    # 14,000 req/s), whose answers are kept ones, without errors by construction.
    lean: bool = False
    first_latency_only: bool = False  # measured at the first upstream latency only


CEILING = Server("ceiling", "ceiling")
STOCK = Server("stock", "stock")
ROWS: tuple[Row, ...] = (
    Row("ceiling", "bare Starlette, same bytes (ceiling)", CEILING, upstream=False, calls="none",
        lean=True),
    Row("stock", "stock Strawberry, data in memory", STOCK, upstream=False, calls="none"),
    Row("uncached", "gateway, upstream caches off", Server("gw-uncached", "gateway"),
        distinct=True),
    # Warm rows call no upstream: one upstream latency tells all (and keeps the run short).
    Row("warm", "gateway, upstream cache warm", Server("gw-warm", "gateway", cached=True),
        calls="zero", first_latency_only=True),
    # The same two paths on graphql-core's executor (compiled execution off): "before".
    Row("uncached-gc", "gateway on graphql-core, upstream caches off",
        Server("gw-uncached-gc", "gateway", compiled=False), distinct=True,
        first_latency_only=True),
    Row("warm-gc", "gateway on graphql-core, upstream cache warm",
        Server("gw-warm-gc", "gateway", cached=True, compiled=False), calls="zero",
        first_latency_only=True),
    # Observability's price: the uncached and warm rows with metrics and request logs on.
    Row("uncached-obs", "gateway, upstream caches off, metrics and logs on",
        Server("gw-uncached-obs", "gateway", observed=True), distinct=True,
        first_latency_only=True),
    Row("warm-obs", "gateway, upstream cache warm, metrics and logs on",
        Server("gw-warm-obs", "gateway", cached=True, observed=True), calls="zero",
        first_latency_only=True),
    Row("hit", "gateway, response cache hit (memory)",
        Server("gw-hit", "gateway", cached=True, response_cache=True), calls="zero",
        first_latency_only=True, lean=True),
    Row("hit-redis", "gateway, response cache hit (Redis)",
        Server("gw-hit-redis", "gateway", cached=True, response_cache=True, redis=True),
        calls="zero", first_latency_only=True, lean=True),
)


@dataclass
class Sample:
    rps: float
    cpu_ms: float
    p50_ms: float
    p99_ms: float
    calls: float  # upstream calls over requests wrk sent (see count_calls)
    wrk_cpu: float
    sent: int
    upstream_bytes: float = 0.0  # upstream answer bytes over requests wrk sent


@dataclass(frozen=True)
class Upstream:
    """What the emulators' logs hold: calls answered (or given up) and their answers' bytes."""

    calls: int
    answer_bytes: int


@dataclass
class Running:
    server: Server
    process: subprocess.Popen[bytes]
    url: str


@dataclass
class Bench:
    args: argparse.Namespace
    server_cpu: str | None  # taskset cpu list for the servers (None: no pinning)
    load_cpu: str | None  # for the emulators and wrk
    emulators: dict[str, str] = field(default_factory=dict)
    servers: dict[str, Running] = field(default_factory=dict)
    cold_calls: dict[str, int] = field(default_factory=dict)
    exact_calls: dict[tuple[str, int | None, str], float] = field(default_factory=dict)
    exact_bytes: dict[tuple[str, int | None, str], float] = field(default_factory=dict)
    tmp: Path = Path()
    redis_url: str | None = None
