"""Benchmark: the main nested query through a gateway process over the emulators.

    python bench/run.py [--requests 400] [--concurrency 10] [--latency-ms 50]

Three processes: the emulators (``python -m gateway.emulators``), the gateway (``python -m gateway
serve``) and this load generator, so the gateway's own CPU time can be read from /proc. Reported
as ratios measured in one run (shared machines are noisy): upstream calls per query (cold), CPU
ms per query in the gateway (warm cache and uncached), latency over the upstreams' own, and
requests/s warm and uncached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from gateway.emulators import DEMO_TOKENS, KINDS

ROOT = Path(__file__).resolve().parents[1]
QUERY = """{ productGroups(first: 20, filter: {sources: ["axim"]}) {
  nodes { name products(first: 5) { totalCount nodes { name sku variants { sku } } } } } }"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config_text(base: int, ttl: float) -> str:
    lines = ["[server]", 'cursor_secret = "bench-cursor-secret"', "[defaults]",
             f"cache_ttl_seconds = {ttl}",
             f"group_cache_ttl_seconds = {ttl}"]
    for i, kind in enumerate(KINDS):
        lines += ["[[sources]]", f'name = "{kind}"', f'kind = "{kind}"',
                  f'base_url = "http://127.0.0.1:{base + i}"', f'token = "{DEMO_TOKENS[kind]}"']
    return "\n".join(lines) + "\n"


def upstream_calls(base: int) -> int:
    return sum(len(httpx.get(f"http://127.0.0.1:{base + i}/_emulator/requests").json()["requests"])
               for i in range(len(KINDS)))


def clear_logs(base: int) -> None:
    for i in range(len(KINDS)):
        httpx.delete(f"http://127.0.0.1:{base + i}/_emulator/requests")


async def load(url: str, requests: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in queue:
            started = time.perf_counter()
            response = await client.post(url, json={"query": QUERY})
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200 or "errors" in response.json():
                raise RuntimeError(response.text[:300])

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies


def measure(base: int, ttl: float, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as file:
        file.write(config_text(base, ttl))
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", file.name,
                                "--port", str(port), "--log-level", "warning"], cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        wait_http(f"http://127.0.0.1:{port}/healthz")
        clear_logs(base)
        httpx.post(url, json={"query": QUERY}, timeout=30)  # cold: count upstream calls
        cold_calls = upstream_calls(base)
        asyncio.run(load(url, 50, args.concurrency))  # warm-up
        before, started = cpu_seconds(gateway.pid), time.perf_counter()
        latencies = asyncio.run(load(url, args.requests, args.concurrency))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(gateway.pid) - before
    finally:
        gateway.terminate()
        gateway.wait(timeout=10)
        os.unlink(file.name)
    return {"calls_cold": cold_calls, "cpu_ms": 1000 * cpu / args.requests,
            "rps": args.requests / elapsed, "p50_ms": 1000 * statistics.median(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    base = 18300  # four consecutive ports for the emulators
    emulators = subprocess.Popen([sys.executable, "-m", "gateway.emulators", "--port-base",
                                  str(base)], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        for i in range(len(KINDS)):
            wait_http(f"http://127.0.0.1:{base + i}/_emulator/requests")
            httpx.put(f"http://127.0.0.1:{base + i}/_emulator/faults",
                      json={"latency_ms": args.latency_ms})
        warm = measure(base, 300, args)
        cold = measure(base, 0, args)
    finally:
        emulators.terminate()
        emulators.wait(timeout=10)
    print(f"query: 20 Axim groups x 5 products with variant SKUs; upstream latency "
          f"{args.latency_ms} ms; {args.requests} requests at concurrency {args.concurrency}")
    print(f"upstream calls per query (cold): {cold['calls_cold']:.0f}")
    for name, row in (("warm cache", warm), ("uncached", cold)):
        over = row["p50_ms"] - (0 if name == "warm cache" else args.latency_ms)
        print(f"{name:>10}: {row['rps']:7.1f} req/s  {row['cpu_ms']:6.2f} CPU ms/query  "
              f"p50 {row['p50_ms']:6.1f} ms  (over the upstream: {over:5.1f} ms)")
    print(f"ratio warm/uncached req/s: {warm['rps'] / cold['rps']:.1f}")


if __name__ == "__main__":
    main()
