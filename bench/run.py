"""``make bench``: the gateway against its references, in one run, under wrk.

    python -m bench.run [--duration 5] [--runs 3] [--connections 32] [--profile-seconds 0]

Processes: the four emulators (``python -m gateway.emulators``), one gateway per gateway row
(``python -m gateway serve --config FILE``), the two references (``python -m bench.reference``)
and wrk. The servers are pinned with ``taskset`` to one core, the emulators and wrk to the other
(when there are two cores and taskset). Per row and run: requests/s and p50/p99 from wrk; CPU ms
per query from the server process's own accounting (``/proc/PID/stat`` utime + stime, from the
start of the run until the server is idle again, over the requests wrk sent); upstream calls and
upstream answer bytes per query from the emulators' request logs. Runs are interleaved (run 1 of
every row, then run 2…); the table gives medians and the spread ((max - min) / median), flagging
spreads above 15 %; a fan-out table per scenario divides the CPU by the upstream calls and
answer KB. Before any timing every contender's answer is checked byte for byte against the
gateway's. Then the profiles: py-spy by layer (``bench/profile.py``) on the main scenario (cache
warm and off) and on ``merged`` and ``nodes`` (caches off), and the garbage collector's share
measured in process (``bench/gc_share.py``). Results go to ``bench/README.md`` (``--output``).

This module runs the processes, measures and profiles; the rows and a run's state are in
``bench/model.py``, the results' tables and wording in ``bench/report.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import gc_share, profile, refusals
from bench.model import COUNTED, ROWS, Bench, Row, Running, Sample, Server, Upstream
from bench.report import fan_out_tables, gc_markdown, profile_intro, render, table
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
TICKS = os.sysconf("SC_CLK_TCK")


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


def upstream_log(bench: Bench) -> Upstream:
    """Calls and answer bytes over every emulator's log (one read of each)."""
    calls = answer_bytes = 0
    for url in bench.emulators.values():
        records = httpx.get(f"{url}/_emulator/requests", timeout=30).json()["requests"]
        calls += len(records)
        answer_bytes += sum(r["response_bytes"] for r in records)
    return Upstream(calls, answer_bytes)


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
        bench.cold_calls[scenario.name] = upstream_log(bench).calls
    return answers


# -- upstream calls per query, exactly -----------------------------------------------------------


def count_calls(bench: Bench, row: Row, scenario: Scenario, tag: str) -> tuple[float, float]:
    """Upstream calls and answer bytes per query over exactly COUNTED requests at the
    benchmark's concurrency.

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
    upstream = upstream_log(bench)
    return upstream.calls / COUNTED, upstream.answer_bytes / COUNTED


# -- one measurement ----------------------------------------------------------------------------


def wrk(bench: Bench, url: str, body: Path, row: Row, tag: str, seconds: float
        ) -> dict[str, Any]:
    mode = "distinct" if row.distinct else "lean" if row.lean else "same"
    # wrk reads whole seconds only ("-d0.5s" is a usage error): a fraction is rounded up.
    command = pinned(bench.load_cpu, [
        "wrk", "-t1", f"-c{bench.args.connections}", f"-d{max(1, math.ceil(seconds))}s",
        "--timeout", "30s",
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
    upstream = upstream_log(bench)
    failures = result["bad_status"] + result["gql_errors"] + result["socket_errors"]
    if failures or result["requests"] == 0:
        raise RuntimeError(f"{row.label}, {scenario.name}: {result}")
    seconds = result["duration_us"] / 1e6
    sent = result["sent"]
    return Sample(rps=result["requests"] / seconds, cpu_ms=1000 * cpu / sent,
                  p50_ms=result["p50_us"] / 1000, p99_ms=result["p99_us"] / 1000,
                  calls=upstream.calls / sent, wrk_cpu=result["cpu_ticks"] / TICKS / seconds,
                  sent=sent, upstream_bytes=upstream.answer_bytes / sent)


# -- the profile --------------------------------------------------------------------------------


# (scenario, row): the paths profiled. The main scenario warm and cold; merged and nodes cold,
# where their fan-out (every source's group table; sixteen calls) is the work.
PROFILED = (("main", "warm"), ("main", "uncached"), ("merged", "uncached"), ("nodes", "uncached"))
PATH_TITLES = {"warm": "upstream cache warm", "uncached": "upstream caches off"}


def profile_paths(bench: Bench, scenarios: list[Scenario], bodies: dict[str, Path]) -> str:
    """py-spy on the gateway under load for each of PROFILED (no upstream latency)."""
    parts = [profile_intro(bench.args.profile_seconds)]
    by_name = {s.name: s for s in scenarios}
    for name, key in PROFILED:
        if name not in by_name:
            continue
        recorded = profile_path(bench, by_name[name], bodies[name], key)
        if recorded.startswith("not recorded"):
            return recorded
        parts.append(recorded)
    parts.append(gc_section(bench, scenarios))
    return "\n\n".join(parts)


def profile_path(bench: Bench, scenario: Scenario, body: Path, key: str) -> str:
    """One path's profile by layer (markdown), or why it was not recorded."""
    seconds = bench.args.profile_seconds
    pin = ["taskset", "-c", bench.load_cpu] if bench.load_cpu is not None else []
    row = next(r for r in ROWS if r.key == key)
    running = bench.servers[row.server.name]
    out = bench.tmp / f"profile-{scenario.name}-{key}.txt"
    sampler = profile.record(running.process.pid, seconds, out, pin)
    if isinstance(sampler, str):
        return f"not recorded: {sampler}"
    time.sleep(0.5)
    result = wrk(bench, running.url + row.server.path(scenario), body, row,
                 f"p{scenario.name}{key}", seconds + 1)
    _, error = sampler.communicate(timeout=seconds + 30)
    if sampler.returncode != 0 or not out.exists():
        return f"not recorded: py-spy failed ({error.decode(errors='replace')[-500:]})"
    if bench.args.profile_dir is not None:  # the raw stacks, e.g. for a flame graph
        Path(bench.args.profile_dir).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(bench.args.profile_dir) / out.name)
    title = f"`{scenario.name}`, {PATH_TITLES[key]}"
    return profile.markdown(title, out.read_text(), result["requests"])


def gc_section(bench: Bench, scenarios: list[Scenario]) -> str:
    """The collector's share of the uncached gateway's CPU per scenario (``bench/gc_share.py``,
    in a process of its own on the servers' core, over the running emulators)."""
    seconds = bench.args.profile_seconds
    scenarios_file = bench.tmp / "gc-scenarios.json"
    scenarios_file.write_text(json.dumps([vars(s) for s in scenarios]))
    command = pinned(bench.server_cpu, [
        sys.executable, "-m", "bench.gc_share", "--config",
        str(bench.tmp / "gw-uncached.toml"), "--scenarios", str(scenarios_file),
        "--seconds", f"{seconds:g}", "--connections", str(bench.args.connections)])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=60 + 3 * len(scenarios) * (seconds + 2))
    if done.returncode != 0:
        return f"### The garbage collector\n\nnot measured: {done.stderr[-500:]}"
    shares = [gc_share.GcShare.from_json(json.loads(line))
              for line in done.stdout.splitlines() if line]
    return gc_markdown(shares, seconds, bench.args.connections)


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
                        help="py-spy sampling per path, and the GC's timing per scenario "
                             "(0: no profile)")
    parser.add_argument("--profile-dir", default=None,
                        help="also keep py-spy's raw stacks here (e.g. for a flame graph)")
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
                                key = (scenario.name, at, row.key)
                                bench.exact_calls[key], bench.exact_bytes[key] = count_calls(
                                    bench, row, scenario, f"c{li}{row.key}")
                            print(f"run {run + 1} {scenario.name:<6} "
                                  f"{'-' if at is None else at:>2} ms {row.key:<8} "
                                  f"{sample.rps:8.1f} req/s {sample.cpu_ms:7.2f} CPU ms/q "
                                  f"calls/q {sample.calls:5.2f} wrk {sample.wrk_cpu:4.0%}",
                                  flush=True)
            set_latency(bench, 0)
            profiles = (profile_paths(bench, scenarios, bodies)
                        if args.profile_seconds > 0 else None)
    print("refusals: the attacks of query safety, in process", flush=True)
    refused = refusals.report(asyncio.run(refusals.measure(args.refusal_repeat)))
    text, problems = table(bench, scenarios, samples)
    fanned = fan_out_tables(bench, scenarios, samples)
    minutes = (time.monotonic() - started_at) / 60
    report = render(bench, command, scenarios, text, fanned, problems, profiles, minutes,
                    refused)
    print(report)
    if args.output != "-":
        Path(args.output).write_text(report)
        print(f"written to {args.output}")
    return 1 if problems and not problems[0].startswith("(none") else 0



if __name__ == "__main__":
    sys.exit(main())
