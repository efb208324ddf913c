"""``make bench``: the gateway against its references, in one run, under wrk.

    python -m bench.run [--duration 5] [--runs 3] [--connections 32] [--no-profile]

Processes: the four emulators (``python -m gateway.emulators``), one gateway per gateway row
(``python -m gateway serve --config FILE``), the two references (``python -m bench.reference``)
and wrk. The servers are pinned with ``taskset`` to one core, the emulators and wrk to the other
(when there are two cores and taskset). Per row and run: requests/s and p50/p99 from wrk; CPU ms
per query from the server process's own accounting (``/proc/PID/stat`` utime + stime, from the
start of the run until the server is idle again, over the requests wrk sent); upstream calls per
query from the emulators' request logs. Runs are interleaved (run 1 of every row, then run 2…);
the table gives medians and the spread ((max - min) / median), flagging spreads above 15 %.
Before any timing every contender's answer is checked byte for byte against the gateway's.
Results go to ``bench/README.md`` (``--output``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import profile, refusals
from bench.scenarios import (
    SOURCES,
    Scenario,
    body_bytes,
    gateway_config,
    load_dataset,
    post,
    prepare,
    tagged_language,
)
from gateway.emulators import DEMO_TOKENS
from tests.redis_server import running_redis

ROOT = Path(__file__).resolve().parents[1]
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
SPREAD_FLAG = 0.15  # a row whose runs spread more than this is flagged
WRK_CPU_LIMIT = 0.5  # wrk must use less than this share of one core: else it may be the bottleneck
TICKS = os.sysconf("SC_CLK_TCK")


# -- what is measured ---------------------------------------------------------------------------


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
    tmp: Path = Path()
    redis_url: str | None = None


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_base(count: int) -> int:
    """The first of ``count`` consecutive free ports."""
    for _ in range(200):
        base = random.randrange(20000, 60000)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free consecutive ports")


def pinned(cpu: str | None, command: Sequence[str]) -> list[str]:
    return (["taskset", "-c", cpu] if cpu is not None else []) + list(command)


def wait_http(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, process.args))} exited ({process.returncode})")  # type: ignore[arg-type]
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_idle(pid: int, timeout: float = 20.0) -> None:
    """Until the process used no more than one clock tick in 0.3 s: its requests are done."""
    deadline = time.monotonic() + timeout
    last = cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = cpu_ticks(pid)
        if now - last <= 1:
            return
        last = now
    raise RuntimeError(f"process {pid} did not go idle")


@contextlib.contextmanager
def started(bench: Bench) -> Iterator[None]:
    """The emulators and the gateways (the references start once the answers are known)."""
    emulators: subprocess.Popen[bytes] | None = None
    try:
        base = free_port_base(len(SOURCES))
        emulators = subprocess.Popen(
            pinned(bench.load_cpu, [sys.executable, "-m", "gateway.emulators", "--port-base",
                                    str(base)]),
            cwd=ROOT, stdout=subprocess.DEVNULL)
        # python -m gateway.emulators serves the kinds on base + 0..3 in the order of SOURCES.
        bench.emulators = {kind: f"http://127.0.0.1:{base + i}" for i, kind in enumerate(SOURCES)}
        for url in bench.emulators.values():
            wait_http(f"{url}/_emulator/requests", emulators)
        for server in {row.server.name: row.server for row in ROWS}.values():
            if server.kind == "gateway":
                bench.servers[server.name] = _start_gateway(bench, server)
        yield
    finally:
        processes = [r.process for r in bench.servers.values()]
        processes += [emulators] if emulators is not None else []
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _start_gateway(bench: Bench, server: Server) -> Running:
    config = bench.tmp / f"{server.name}.toml"
    config.write_text(gateway_config(
        bench.emulators, DEMO_TOKENS, cached=server.cached, compiled=server.compiled,
        response_cache=server.response_cache,
        cache_url=bench.redis_url if server.redis else None, observed=server.observed))
    port = free_port()
    # Observed: the request lines are written (to a file: what a log shipper reads).
    level = "info" if server.observed else "warning"
    log = (bench.tmp / f"{server.name}.log").open("wb") if server.observed else None
    process = subprocess.Popen(
        pinned(bench.server_cpu, [sys.executable, "-m", "gateway", "serve", "--config",
                                  str(config), "--port", str(port), "--log-level", level]),
        cwd=ROOT, stderr=log)
    if log is not None:
        log.close()  # the server holds its own copy
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", process)
    return Running(server, process, url)


def _start_reference(bench: Bench, server: Server, data: Path) -> Running:
    port = free_port()
    option = "--answers" if server.kind == "ceiling" else "--dataset"
    process = subprocess.Popen(
        pinned(bench.server_cpu, [sys.executable, "-m", "bench.reference", server.kind, option,
                                  str(data), "--port", str(port)]), cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_http(url, process)
    return Running(server, process, url)


# -- upstreams ----------------------------------------------------------------------------------


def set_latency(bench: Bench, latency_ms: int) -> None:
    for url in bench.emulators.values():
        httpx.put(f"{url}/_emulator/faults", json={"latency_ms": latency_ms}).raise_for_status()


def clear_logs(bench: Bench) -> None:
    for url in bench.emulators.values():
        httpx.delete(f"{url}/_emulator/requests").raise_for_status()


def upstream_calls(bench: Bench) -> int:
    return sum(len(httpx.get(f"{url}/_emulator/requests", timeout=30).json()["requests"])
               for url in bench.emulators.values())


# -- checks before timing -----------------------------------------------------------------------


def prepare_references(bench: Bench, scenarios: list[Scenario]) -> dict[str, bytes]:
    """The gateway's answers; every contender must answer the same bytes (else: stop)."""
    warm = bench.servers["gw-warm"].url + "/graphql"
    answers = {s.name: post(warm, s) for s in scenarios}
    answers_file = bench.tmp / "answers.json"
    answers_file.write_text(json.dumps({k: v.decode() for k, v in answers.items()}))
    dataset_file = bench.tmp / "dataset.json"
    dataset_file.write_text(json.dumps(load_dataset(warm)))
    for row in ROWS:
        server = row.server
        if server.kind != "gateway" and server.name not in bench.servers:
            data = answers_file if server.kind == "ceiling" else dataset_file
            bench.servers[server.name] = _start_reference(bench, server, data)
    for scenario in scenarios:
        clear_logs(bench)
        for row in ROWS:
            running = bench.servers[row.server.name]
            url = running.url + row.server.path(scenario)
            headers = {"Accept-Language": tagged_language("check")} if row.distinct else None
            answer = post(url, scenario, headers)
            if answer != answers[scenario.name]:
                raise SystemExit(f"{row.label} answers {scenario.name} differently from the "
                                 f"gateway:\n{answer[:300]!r}\n{answers[scenario.name][:300]!r}")
        # Upstream calls of one query alone, nothing cached: what an uncached row must show.
        wait_idle(bench.servers["gw-uncached"].process.pid)
        clear_logs(bench)
        post(bench.servers["gw-uncached"].url + "/graphql", scenario,
             {"Accept-Language": tagged_language("cold")})
        bench.cold_calls[scenario.name] = upstream_calls(bench)
    return answers


# -- upstream calls per query, exactly -----------------------------------------------------------


COUNTED = 64  # requests of the exact count, two rounds of 32 concurrent ones


def count_calls(bench: Bench, row: Row, scenario: Scenario, tag: str) -> float:
    """Upstream calls per query over exactly COUNTED requests at the benchmark's concurrency.

    wrk stops mid-flight: requests it sent last may never be executed (the client is gone before
    the server reads them), so calls over requests sent reads a little under the truth. This
    closed set of requests, all answered, gives the exact figure; the timed runs are checked
    against it too (they can only read lower by the requests in flight at the end).
    """
    running = bench.servers[row.server.name]
    url = running.url + row.server.path(scenario)
    body = body_bytes(scenario)

    async def send_all() -> None:
        limit = asyncio.Semaphore(bench.args.connections)
        async with httpx.AsyncClient(timeout=120) as client:
            async def one(n: int) -> None:
                headers = {"Content-Type": "application/json"}
                if row.distinct:
                    headers["Accept-Language"] = tagged_language(f"{tag}-{n}")
                async with limit:
                    response = await client.post(url, content=body, headers=headers)
                if response.status_code != 200 or b'"errors"' in response.content:
                    raise RuntimeError(f"{row.label}: {response.text[:300]}")

            await asyncio.gather(*(one(n) for n in range(COUNTED)))

    wait_idle(running.process.pid)
    clear_logs(bench)
    asyncio.run(send_all())
    wait_idle(running.process.pid)
    return upstream_calls(bench) / COUNTED


# -- one measurement ----------------------------------------------------------------------------


def wrk(bench: Bench, url: str, body: Path, row: Row, tag: str, seconds: float
        ) -> dict[str, Any]:
    mode = "distinct" if row.distinct else "lean" if row.lean else "same"
    command = pinned(bench.load_cpu, [
        "wrk", "-t1", f"-c{bench.args.connections}", f"-d{seconds:g}s", "--timeout", "30s",
        "-s", str(WRK_SCRIPT), url, "--", str(body), mode, tagged_language(tag)])
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "BENCH_WRK_MODE": mode})
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1][len("BENCH "):])
    return result


def measure(bench: Bench, row: Row, scenario: Scenario, body: Path, tag: str, warm_up: bool
            ) -> Sample:
    running = bench.servers[row.server.name]
    url = running.url + row.server.path(scenario)
    pid = running.process.pid
    if warm_up:
        wrk(bench, url, body, row, f"{tag}w", bench.args.warmup)
    wait_idle(pid)
    clear_logs(bench)
    before = cpu_ticks(pid)
    result = wrk(bench, url, body, row, tag, bench.args.duration)
    wait_idle(pid)
    cpu = (cpu_ticks(pid) - before) / TICKS
    calls = upstream_calls(bench)
    failures = result["bad_status"] + result["gql_errors"] + result["socket_errors"]
    if failures or result["requests"] == 0:
        raise RuntimeError(f"{row.label}, {scenario.name}: {result}")
    seconds = result["duration_us"] / 1e6
    sent = result["sent"]
    return Sample(rps=result["requests"] / seconds, cpu_ms=1000 * cpu / sent,
                  p50_ms=result["p50_us"] / 1000, p99_ms=result["p99_us"] / 1000,
                  calls=calls / sent, wrk_cpu=result["cpu_ticks"] / TICKS / seconds, sent=sent)


# -- the profile --------------------------------------------------------------------------------


def profile_paths(bench: Bench, scenario: Scenario, body: Path) -> str:
    """py-spy on the warm and the uncached gateway under load (main scenario, no latency)."""
    seconds = bench.args.profile_seconds
    parts = [f"`py-spy record --rate 200` on the gateway process while wrk loads it with the "
             f"`{scenario.name}` scenario at upstream latency 0 ({seconds:g} s per path). Each "
             "sample is charged to the innermost frame of a known layer (`bench/profile.py`); "
             "C code (orjson, hashlib, httptools) counts for the Python frame that calls it."]
    pin = ["taskset", "-c", bench.load_cpu] if bench.load_cpu is not None else []
    for key, title in (("warm", "Upstream cache warm"), ("uncached", "Upstream caches off")):
        row = next(r for r in ROWS if r.key == key)
        running = bench.servers[row.server.name]
        out = bench.tmp / f"profile-{key}.txt"
        sampler = profile.record(running.process.pid, seconds, out, pin)
        if isinstance(sampler, str):
            return f"not recorded: {sampler}"
        time.sleep(0.5)
        result = wrk(bench, running.url + row.server.path(scenario), body, row, f"p{key}",
                     seconds + 1)
        _, error = sampler.communicate(timeout=seconds + 30)
        if sampler.returncode != 0 or not out.exists():
            return f"not recorded: py-spy failed ({error.decode(errors='replace')[-500:]})"
        parts.append(profile.markdown(title, out.read_text(), result["requests"]))
    return "\n\n".join(parts)


# -- the table ----------------------------------------------------------------------------------


def spread(values: list[float]) -> float:
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


def table(bench: Bench, scenarios: list[Scenario],
          samples: dict[tuple[str, int | None, str], list[Sample]]) -> tuple[str, list[str]]:
    """The markdown table and the problems found (calls not as expected, wrk saturated)."""
    problems: list[str] = []
    lines = ["| scenario | upstream latency | contender | req/s | CPU ms / query | p50 ms | "
             "p99 ms | upstream calls / query | req/s vs stock Strawberry |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for scenario in scenarios:
        stock = statistics.median(s.rps for s in samples[(scenario.name, None, "stock")])
        for latency in [None, *bench.args.latencies]:
            for row in ROWS:
                if (latency is None) == row.upstream or (scenario.name, latency, row.key) \
                        not in samples:
                    continue
                runs = samples[(scenario.name, latency, row.key)]
                rps = [s.rps for s in runs]
                cpu = [s.cpu_ms for s in runs]
                flag = " ⚠" if max(spread(rps), spread(cpu)) > SPREAD_FLAG else ""
                if row.calls == "none":
                    calls_text = "-"
                else:
                    expected = 0 if row.calls == "zero" else bench.cold_calls[scenario.name]
                    calls = bench.exact_calls[(scenario.name, latency, row.key)]
                    calls_text = (f"{calls:.2f}" if row.calls == "zero" or expected == 1
                                  else f"{calls:.2f} ({calls / expected:.2f} x one query's "
                                       f"{expected})")
                    if abs(calls - expected) > 1e-9:
                        problems.append(f"{scenario.name} {latency} ms {row.key}: {calls:.3f} "
                                        f"upstream calls per query, expected {expected}")
                    for s in runs:  # the timed runs: lower only by requests cut off at the end
                        low = expected * (1 - bench.args.connections / s.sent)
                        if not low - 1e-9 <= s.calls <= expected + 1e-9:
                            problems.append(f"{scenario.name} {latency} ms {row.key}: timed run "
                                            f"at {s.calls:.3f} upstream calls per request sent, "
                                            f"expected {expected} (or a little under)")
                for s in runs:
                    if s.wrk_cpu >= WRK_CPU_LIMIT:
                        problems.append(f"{scenario.name} {latency} ms {row.key}: wrk used "
                                        f"{s.wrk_cpu:.0%} of a core (limit {WRK_CPU_LIMIT:.0%})")
                lines.append(
                    f"| {scenario.name} | {'-' if latency is None else f'{latency} ms'} | "
                    f"{row.label} | {statistics.median(rps):,.0f} ±{spread(rps) / 2:.0%}{flag} | "
                    f"{statistics.median(cpu):.2f} ±{spread(cpu) / 2:.0%} | "
                    f"{statistics.median(s.p50_ms for s in runs):.1f} | "
                    f"{statistics.median(s.p99_ms for s in runs):.1f} | {calls_text} | "
                    f"{statistics.median(rps) / stock:.2f} |")
    wrk_max = max(s.wrk_cpu for runs in samples.values() for s in runs)
    return "\n".join(lines), problems + ([] if problems else [
        f"(none: uncached rows at one query's own upstream calls, warm rows at 0; wrk at most "
        f"{wrk_max:.0%} of a core, below the {WRK_CPU_LIMIT:.0%} limit)"])


def machine(bench: Bench) -> str:
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True,
                                 check=False).stdout.split("[")[0].strip()
    pinning = (f"servers pinned to CPU {bench.server_cpu}, emulators and wrk to CPU "
               f"{bench.load_cpu} (taskset)" if bench.server_cpu is not None
               else "no pinning (fewer than two cores or no taskset)")
    return (f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, Python "
            f"{platform.python_version()}, {wrk_version}; {pinning}")


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4, help="seconds per row and run")
    parser.add_argument("--warmup", type=float, default=1, help="seconds before a row's 1st run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--latencies", type=int, nargs="+", default=[0, 20],
                        help="upstream latencies, ms")
    parser.add_argument("--profile-seconds", type=float, default=4,
                        help="py-spy sampling per path (0: no profile)")
    parser.add_argument("--refusal-repeat", type=int, default=10,
                        help="timed requests per refusal (bench/refusals.py)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "README.md"),
                        help="the results file ('-': print only)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed: the benchmark's load generator is Debian's `wrk` "
              "(apt-get install wrk)", file=sys.stderr)
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    two = len(cpus) >= 2 and shutil.which("taskset") is not None
    bench = Bench(args, str(cpus[0]) if two else None,
                  ",".join(map(str, cpus[1:])) if two else None)
    started_at = time.monotonic()
    command = "make bench" if os.environ.get("MAKELEVEL") else "python -m bench.run " + " ".join(
        argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, contextlib.ExitStack() as redis:
        bench.tmp = Path(tmp)
        if any(row.server.redis for row in ROWS):
            (bench.tmp / "redis").mkdir()
            bench.redis_url = redis.enter_context(running_redis(bench.tmp / "redis"))
        with started(bench):
            set_latency(bench, 0)
            scenarios = prepare(bench.servers["gw-warm"].url + "/graphql")
            prepare_references(bench, scenarios)
            print("answers checked byte-identical (gateway, ceiling, stock Strawberry); upstream "
                  f"calls of one uncached query: {bench.cold_calls}", flush=True)
            bodies = {s.name: bench.tmp / f"{s.name}.json" for s in scenarios}
            for s in scenarios:
                bodies[s.name].write_bytes(body_bytes(s))
            samples: dict[tuple[str, int | None, str], list[Sample]] = defaultdict(list)
            for run in range(args.runs):
                for li, latency in enumerate(args.latencies):
                    set_latency(bench, latency)
                    for scenario in scenarios:
                        for row in ROWS:
                            if (not row.upstream or row.first_latency_only) and li > 0:
                                continue  # the references never call an upstream
                            at = latency if row.upstream else None
                            sample = measure(bench, row, scenario, bodies[scenario.name],
                                             f"{run}{li}{row.key}", warm_up=run == 0)
                            samples[(scenario.name, at, row.key)].append(sample)
                            if run == 0 and row.calls != "none":
                                bench.exact_calls[(scenario.name, at, row.key)] = count_calls(
                                    bench, row, scenario, f"c{li}{row.key}")
                            print(f"run {run + 1} {scenario.name:<6} "
                                  f"{'-' if at is None else at:>2} ms {row.key:<8} "
                                  f"{sample.rps:8.1f} req/s {sample.cpu_ms:7.2f} CPU ms/q "
                                  f"calls/q {sample.calls:5.2f} wrk {sample.wrk_cpu:4.0%}",
                                  flush=True)
            set_latency(bench, 0)
            main_scenario = scenarios[0]
            profiles = (profile_paths(bench, main_scenario, bodies[main_scenario.name])
                        if args.profile_seconds > 0 else None)
    print("refusals: the attacks of query safety, in process", flush=True)
    refused = refusals.report(asyncio.run(refusals.measure(args.refusal_repeat)))
    text, problems = table(bench, scenarios, samples)
    minutes = (time.monotonic() - started_at) / 60
    report = render(bench, command, scenarios, text, problems, profiles, minutes, refused)
    print(report)
    if args.output != "-":
        Path(args.output).write_text(report)
        print(f"written to {args.output}")
    return 1 if problems and not problems[0].startswith("(none") else 0


def render(bench: Bench, command: str, scenarios: list[Scenario], text: str,
           problems: list[str], profiles: str | None, minutes: float, refused: str) -> str:
    args = bench.args
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    described = "\n".join(f"- `{s.name}`: {s.title}; upstream calls of one uncached query: "
                          f"{bench.cold_calls[s.name]}" for s in scenarios)
    checks = "\n".join(f"- {p}" for p in problems)
    counts = Counter(row.upstream for row in ROWS)
    return f"""{HEADER}
## Results

- date: {today}; command: `{command}`; {minutes:.1f} minutes
- machine: {machine(bench)}
- load: wrk, 1 thread, {args.connections} connections, {args.duration:g} s per row and run
  ({args.warmup:g} s warm-up before the first), {args.runs} interleaved runs; upstream latency
  {" and ".join(f"{latency} ms" for latency in args.latencies)} (the {counts[False]} reference
  rows serve from memory: measured once per run)
- scenarios:
{described}

Medians of the runs; ± is half the spread ((max - min) / median); ⚠ marks a spread above
{SPREAD_FLAG:.0%} (req/s or CPU). CPU ms per query is the server process's own (utime + stime).

{text}

Checks (upstream calls per query as expected; wrk below {WRK_CPU_LIMIT:.0%} of a core):
{checks}

## What a refusal costs

Each attack query safety refuses (README, "Query safety"), sent to a gateway in this process
(`bench/refusals.py`, a new document each time so no cache helps; {args.refusal_repeat} timed
requests each): the milliseconds from the request body to the error answer.

{refused}

## Profile

{profiles or "not recorded (--profile-seconds 0)"}
"""


HEADER = """# Benchmark

`make bench` (`python -m bench.run`, about 10 minutes) measures, in one run on one machine, the
gateway against two references, for three scenarios, at upstream latency 0 and 20 ms:

- **bare Starlette returning the same bytes** (the ceiling: what HTTP alone costs under the same
  uvicorn settings);
- **stock Strawberry**: plain Strawberry types mirroring the schema's shape for the scenario,
  synchronous resolvers over the same records held in memory, no extensions, the same uvicorn
  settings (`bench/reference.py`). Its answers are checked byte-identical to the gateway's before
  any timing; the ratios in the last column are to it;
- **the gateway with upstream caches off**: every request carries its own `Accept-Language` (a
  private-use tag the upstreams ignore, so the answer is unchanged: checked), and the language is
  part of every upstream call's identity in the gateway, so neither the in-flight de-duplication
  nor any cache can share work between requests. The row must show exactly the upstream calls of
  one query alone (1.00 for the main query), or the benchmark fails;
- **the gateway with upstream caches warm**: the same request repeated; must show 0 calls;
- the same two on **graphql-core's executor** (compiled execution off: the path before it), and
  the **whole-response cache**'s hits, in memory and in Redis (they run no GraphQL at all).

wrk (Debian's package) is the load generator; its own CPU share is read from `/proc/self/stat` at
the end of each run and must stay below the stated limit, or the benchmark fails. The servers are
pinned to one core, the emulators and wrk to the other. Absolute numbers depend on the machine:
quote the ratios. A new row (a compiled executor, a response cache) is one `Row(...)` line in
`ROWS` (`bench/run.py`). `tests/bench` runs every scenario once (no timing) so this cannot rot.
"""


if __name__ == "__main__":
    sys.exit(main())
