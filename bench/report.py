"""The results (``bench/README.md``): the markdown ``bench/run.py`` writes from its samples.

The main table and its checks (upstream calls per query as expected, wrk below its CPU limit),
the spread and median helpers, the fan-out tables (CPU per upstream call and per KB of upstream
answer), the garbage collector's section, the machine line, and the page around them
(``render``, ``HEADER``). Apart from ``bench/run.py`` so that the processes and the timing are
in one module and the arithmetic and wording of the results in another, tested without a run
(``tests/bench``); nothing here starts a server or times anything.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import gc_share
from bench.model import COUNTED, ROWS, Bench, Row, Sample
from bench.scenarios import Scenario

SPREAD_FLAG = 0.15  # a row whose runs spread more than this is flagged
WRK_CPU_LIMIT = 0.5  # wrk must use less than this share of one core: else it may be the bottleneck
KB = 1000  # bytes: the fan-out table's unit of upstream answer


# -- the table ----------------------------------------------------------------------------------


def spread(values: list[float]) -> float:
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


def table(bench: Bench, scenarios: list[Scenario],
          samples: dict[tuple[str, int | None, str], list[Sample]]) -> tuple[str, list[str]]:
    """The markdown table and the problems found (calls not as expected, wrk saturated)."""
    problems: list[str] = []
    lines = ["| scenario | upstream latency | contender | req/s | CPU ms / query | p50 ms | "
             "p99 ms | upstream calls / query | server core busy | req/s vs stock Strawberry | "
             "CPU vs stock Strawberry |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for scenario in scenarios:
        stock_runs = samples[(scenario.name, None, "stock")]
        stock = statistics.median(s.rps for s in stock_runs)
        stock_cpu = statistics.median(s.cpu_ms for s in stock_runs)
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
                    f"{statistics.median(rps) * statistics.median(cpu) / 1000:.0%} | "
                    f"{statistics.median(rps) / stock:.2f} | "
                    f"{stock_cpu / statistics.median(cpu):.2f} |")
    wrk_max = max(s.wrk_cpu for runs in samples.values() for s in runs)
    return "\n".join(lines), problems + ([] if problems else [
        f"(none: uncached rows at one query's own upstream calls, warm rows at 0; wrk at most "
        f"{wrk_max:.0%} of a core, below the {WRK_CPU_LIMIT:.0%} limit)"])


# -- the fan-out: CPU per upstream call and per KB of upstream answer ----------------------------


@dataclass(frozen=True)
class FanOut:
    """One timed run's CPU over the upstream work it caused."""

    cpu_per_call: float  # CPU ms per upstream call
    cpu_per_kb: float | None  # CPU ms per KB of upstream answer (None: no byte answered)


def fan_out(sample: Sample) -> FanOut | None:
    """The run's CPU per upstream call and per KB of answer; None when it made no call.

    CPU, calls and bytes are all per request wrk sent, so the ratios are the CPU over the calls
    and bytes themselves: the requests cut off at the end of a run cancel out.
    """
    if sample.calls <= 0:
        return None
    kb = sample.upstream_bytes / KB
    return FanOut(sample.cpu_ms / sample.calls, sample.cpu_ms / kb if kb > 0 else None)


def figure(value: float) -> str:
    """Three significant digits and no exponent (0.0123, 1.23, 123, 1,234)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    return f"{value:,.{max(0, 2 - math.floor(math.log10(abs(value))))}f}"


def median_text(values: list[float]) -> str:
    """The median and half the spread, as the main table writes them."""
    flag = " ⚠" if spread(values) > SPREAD_FLAG else ""
    return f"{figure(statistics.median(values))} ±{spread(values) / 2:.0%}{flag}"


def fan_out_line(bench: Bench, key: tuple[str, int | None, str], row: Row,
                 runs: list[Sample]) -> str | None:
    """One row's line of the fan-out table; None for a gateway row that calls no upstream."""
    latency = "-" if key[1] is None else f"{key[1]} ms"
    cpu = median_text([s.cpu_ms for s in runs])
    if row.calls == "none":
        return f"| {latency} | {row.label} | {cpu} | - | - | - | - |"
    figures = [f for f in map(fan_out, runs) if f is not None]
    if len(figures) < len(runs):
        return None  # a warm cache, a response-cache hit: no upstream work to divide by
    per_kb = [f.cpu_per_kb for f in figures if f.cpu_per_kb is not None]
    return (f"| {latency} | {row.label} | {cpu} | {bench.exact_calls[key]:.2f} | "
            f"{figure(bench.exact_bytes[key] / KB)} | "
            f"{median_text([f.cpu_per_call for f in figures])} | "
            f"{median_text(per_kb) if len(per_kb) == len(figures) else '-'} |")


def fan_out_tables(bench: Bench, scenarios: list[Scenario],
                   samples: dict[tuple[str, int | None, str], list[Sample]]) -> str:
    """Per scenario, the rows that call an upstream (and the references, which call none)."""
    parts: list[str] = []
    for scenario in scenarios:
        lines = [f"**{scenario.name}** ({scenario.title})", "",
                 "| upstream latency | contender | CPU ms / query | upstream calls / query | "
                 "upstream KB / query | CPU ms / upstream call | CPU ms / upstream KB |",
                 "|---:|---|---:|---:|---:|---:|---:|"]
        for latency in [None, *bench.args.latencies]:
            for row in ROWS:
                key = (scenario.name, latency, row.key)
                if (latency is None) == row.upstream or key not in samples:
                    continue
                line = fan_out_line(bench, key, row, samples[key])
                if line is not None:
                    lines.append(line)
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


# -- the profile section's text -----------------------------------------------------------------


def profile_intro(seconds: float) -> str:
    """The profile section's first paragraph: how the samples were taken and charged."""
    return (f"`py-spy record --rate 200` on the gateway process while wrk loads it at upstream "
            f"latency 0 ({seconds:g} s per path). Each sample is charged to the innermost frame "
            "of a known layer (`bench/profile.py`); C code (orjson, hashlib, httptools) counts "
            "for the Python frame that calls it, and the event loop's own C code (polling, "
            "socket reads and writes, for the clients and the upstreams alike) for the frame "
            "that runs the loop: \"event loop and other\". The garbage collector is invisible "
            "to py-spy (a collection is charged to the frame whose allocation started it): its "
            "share is measured in process, below.")


def gc_markdown(shares: list[gc_share.GcShare], seconds: float, connections: int) -> str:
    rows = "\n".join(
        f"| {g.scenario} | {g.queries:,} | {g.cpu_ms_per_query:.2f} | {g.gc_ms_per_query:.3f} | "
        f"{g.share:.1%} | {' / '.join(f'{c / g.queries:.3f}' for c in g.collections)} |"
        for g in shares if g.queries)
    return f"""### The garbage collector

`bench/gc_share.py`: the gateway as the uncached row configures it, built and frozen as `gateway
serve` does, driven as an ASGI app (no HTTP server; {connections} requests at a time, each with
its own `Accept-Language`) over the same emulators, {seconds:g} s per scenario after a warm-up.
CPU is the process's own (`time.process_time`); GC is the time inside collections
(`gc.callbacks`). Without uvicorn's share the CPU per query reads a little under the table's.

| scenario | queries | CPU ms / query | GC ms / query | GC share of CPU | collections / query \
(gen 0 / 1 / 2) |
|---|---:|---:|---:|---:|---:|
{rows}
"""


# -- the page -----------------------------------------------------------------------------------


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


def render(bench: Bench, command: str, scenarios: list[Scenario], text: str, fanned: str,
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

## CPU per upstream call and per KB of upstream answer

Per scenario, the rows that call an upstream (the references call none: "-"; the warm rows and
the response cache's hits, none either, are left out). Upstream calls and KB (1,000 bytes of
answer body, from the emulators' request logs) per query: exact, over the closed set of
{COUNTED} requests the calls check sends. CPU ms per upstream call and per upstream KB: each timed
run's CPU over that run's own upstream calls and answer bytes, medians ± half the spread (⚠ above
{SPREAD_FLAG:.0%}). All of a query's CPU is divided, not only its upstream part: the figures
compare what a query costs per call it fans out to and per KB it reads, not what one more call
would cost.

{fanned}

## What a refusal costs

Each attack query safety refuses (README, "Query safety"), sent to a gateway in this process
(`bench/refusals.py`, a new document each time so no cache helps; {args.refusal_repeat} timed
requests each): the milliseconds from the request body to the error answer.

{refused}

## Profile

{profiles or "not recorded (--profile-seconds 0)"}
"""


HEADER = """# Benchmark

`make bench` (`python -m bench.run`, about 11 minutes) measures, in one run on one machine, the
gateway against two references, for three scenarios, at upstream latency 0 and 20 ms:

- **bare Starlette returning the same bytes** (the ceiling: what HTTP alone costs under the same
  uvicorn settings);
- **stock Strawberry**: plain Strawberry types mirroring the schema's shape for the scenario,
  synchronous resolvers over the same records held in memory, no extensions, the same uvicorn
  settings (`bench/reference.py`). Its answers are checked byte-identical to the gateway's before
  any timing; the ratios in the last two columns are to it: requests/s, and CPU per query (its
  CPU ms over the row's). Where a row keeps its server's core busy ("server core busy":
  requests/s x CPU ms per query) the two agree. Where it does not — an uncached fan-out row, whose
  7 or 15 calls per query the emulators answer on the other core beside wrk — its requests/s
  measures the emulators, and its CPU ratio is the gateway's figure;
- **the gateway with upstream caches off**: every request carries its own `Accept-Language` (a
  private-use tag the upstreams ignore, so the answer is unchanged: checked), and the language is
  part of every upstream call's identity in the gateway, so neither the in-flight de-duplication
  nor any cache can share work between requests. The row must show exactly the upstream calls of
  one query alone (1.00 for the main query), or the benchmark fails;
- **the gateway with upstream caches warm**: the same request repeated; must show 0 calls;
- the same two on **graphql-core's executor** (compiled execution off: the path before it), and
  the **whole-response cache**'s hits, in memory and in Redis (they run no GraphQL at all).

Per scenario a fan-out table divides each uncached row's CPU by its upstream calls and by the KB
of upstream answer (the emulators log each answer's size). The profile section gives py-spy's
CPU by layer (record building, upstream client, policy layers, merging, execution, encoding…)
for `main` (cache warm and off) and for `merged` and `nodes` (caches off), and the garbage
collector's share, which py-spy cannot see, measured in process (`bench/gc_share.py`).

wrk (Debian's package) is the load generator; its own CPU share is read from `/proc/self/stat` at
the end of each run and must stay below the stated limit, or the benchmark fails. The servers are
pinned to one core, the emulators and wrk to the other. Absolute numbers depend on the machine:
quote the ratios. A new row (a compiled executor, a response cache) is one `Row(...)` line in
`ROWS` (`bench/model.py`). `tests/bench` runs every scenario once (no timing) so this cannot rot.
"""
