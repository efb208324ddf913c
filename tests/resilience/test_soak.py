"""Soak: the gateway as its own process, 2,000+ queries at concurrency 50 while Joptic fails 30%.

Every answer must be either complete and equal to a fault-free warm-up answer of the same query,
or correctly partial: errors only for joptic (``UPSTREAM_*``), every other source's data equal to
the reference. The gateway's resident memory must not grow by more than 50 MB after the first 500
queries. The figures are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.emulators import DEMO_TOKENS, KINDS
from tests.conftest import RunningEmulator
from tests.helpers import free_port

pytestmark = pytest.mark.slow  # `make test-fast` skips this group

Emulators = dict[str, RunningEmulator]
EmulatorOf = Callable[[str], RunningEmulator]
Json = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
QUERIES_TOTAL = 2000
CONCURRENCY = 50
RSS_CHECKPOINT = 500
RSS_GROWTH_LIMIT_KB = 50 * 1024
FAILING = "joptic"

GROUP_FIELDS = "id name status source { id }"
CROSS_SOURCE = f"""query($sources: [ID!]) {{
  productGroups(first: 15, filter: {{sources: $sources}}) {{
    totalCount nodes {{ {GROUP_FIELDS} }} }} }}"""
AXIM_NESTED = """{ productGroups(first: 3, filter: {sources: ["axim"]}) {
  totalCount pageInfo { hasNextPage endCursor }
  nodes { id name products(first: 2) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { name sku price variants { sku } } } } } }"""
NODES = """query($ids: [ID!]!) { nodes(ids: $ids) {
  id ... on ProductGroup { name source { id } } ... on Product { name sku source { id } } } }"""
COMESTRI = """{ products(first: 10, filter: {sources: ["comestri"]}) {
  totalCount nodes { id name sku price source { id } } } }"""
IDS = """query($s: [ID!]) { productGroups(first: 2, filter: {sources: $s}) { nodes { id } } }"""


@dataclass
class Case:
    """One query of the mix, its fault-free answer, and its answer without the failing source."""

    name: str
    query: str
    variables: Json
    reference: Json  # data of the fault-free run
    partial: Json | None  # data expected when joptic fails (None: joptic is not involved)


@dataclass
class Tally:
    complete: int = 0
    partial: int = 0
    stale: int = 0
    bad: int = 0


def _toml(emulators: Emulators, port: int) -> str:
    lines = [
        "[server]", 'host = "127.0.0.1"', f"port = {port}", "graphiql = false",
        'cursor_secret = "soak-test-cursor-secret"',
        "request_timeout_seconds = 10", "",
        "[cache]", 'url = "memory://"', "",
        "[defaults]", "cache_ttl_seconds = 1", "group_cache_ttl_seconds = 1",
        "stale_grace_seconds = 0.5", "max_retries = 1", "retry_backoff_seconds = 0.01",
        "breaker_threshold = 5", "breaker_reset_seconds = 1", "timeout_seconds = 5", "",
    ]
    for kind in KINDS:
        lines += ["[[sources]]", f'name = "{kind}"', f'kind = "{kind}"',
                  f'base_url = "{emulators[kind].url}"', f'token = "{DEMO_TOKENS[kind]}"', ""]
    return "\n".join(lines)


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.fixture
def gateway_process(emulator_servers: Emulators, emulator: EmulatorOf,
                    tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m gateway serve`` over the session's emulators: (base URL, process)."""
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(_toml(emulator_servers, port), encoding="utf-8")
    output = tmp_path / "gateway.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config),
             "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, output.read_text(errors="replace")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log = output.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]


async def _data(client: httpx.AsyncClient, query: str, variables: Json) -> Json:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: Json = response.json()
    assert body.get("errors") is None, body
    data: Json = body["data"]
    return data


def _nodes_without(data: Json, source: str) -> Json:
    """A ``nodes(ids:)`` answer with the entries of ``source`` null."""
    return {"nodes": [None if n is not None and n["source"]["id"] == source else n
                      for n in data["nodes"]]}


def _unknown_total(data: Json) -> Json:
    return {"productGroups": {**data["productGroups"], "totalCount": None}}


async def _cases(client: httpx.AsyncClient) -> list[Case]:
    """The mix, with its fault-free answers (the warm-up)."""
    others = ["carecloud", "axim"]
    ids: list[str] = []
    # CareCloud has no lookup by id (a whole-table scan per query): left out to keep the soak short.
    for source in ("joptic", "axim"):
        data = await _data(client, IDS, {"s": [source]})
        ids += [n["id"] for n in data["productGroups"]["nodes"]]
    products = await _data(client, COMESTRI, {})
    ids += [n["id"] for n in products["products"]["nodes"][:2]]

    cases: list[Case] = []
    # Every source, in source order: the first page is CareCloud's, Joptic counts in the total.
    every = await _data(client, CROSS_SOURCE, {"sources": None})
    cases.append(Case("cross-all", CROSS_SOURCE, {"sources": None}, every, _unknown_total(
        await _data(client, CROSS_SOURCE, {"sources": others}))))
    # Joptic first: its groups fill the page, Axim's take their place when it fails.
    joptic_first = await _data(client, CROSS_SOURCE, {"sources": [FAILING, "axim"]})
    assert {n["source"]["id"] for n in joptic_first["productGroups"]["nodes"]} == {FAILING}
    cases.append(Case("cross-joptic-axim", CROSS_SOURCE, {"sources": [FAILING, "axim"]},
                      joptic_first, _unknown_total(
                          await _data(client, CROSS_SOURCE, {"sources": ["axim"]}))))
    cases.append(Case("axim-nested", AXIM_NESTED, {}, await _data(client, AXIM_NESTED, {}), None))
    nodes = await _data(client, NODES, {"ids": ids})
    assert all(n is not None for n in nodes["nodes"]), nodes
    cases.append(Case("nodes", NODES, {"ids": ids}, nodes, _nodes_without(nodes, FAILING)))
    cases.append(Case("comestri", COMESTRI, {}, products, None))
    return cases


def _judge(case: Case, status: int, body: Json, tally: Tally, problems: list[str]) -> None:
    if status != 200:
        tally.bad += 1
        problems.append(f"{case.name}: HTTP {status}: {str(body)[:300]}")
        return
    if (body.get("extensions") or {}).get("stale"):
        tally.stale += 1
    errors = body.get("errors")
    data = body.get("data")
    if not errors:
        if data == case.reference:
            tally.complete += 1
            return
        problems.append(f"{case.name}: complete answer differs from the reference: {data}")
    else:
        sources = {(e.get("extensions") or {}).get("source") for e in errors}
        codes = {str((e.get("extensions") or {}).get("code")) for e in errors}
        if (case.partial is not None and sources == {FAILING}
                and all(code.startswith("UPSTREAM_") for code in codes)
                and data == case.partial):
            tally.partial += 1
            return
        problems.append(f"{case.name}: not a correct partial answer: {str(body)[:500]}")
    tally.bad += 1


async def test_soak_with_a_randomly_failing_source(
        gateway_process: tuple[str, subprocess.Popen[bytes]], emulator: EmulatorOf) -> None:
    base, process = gateway_process
    joptic = emulator(FAILING)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        cases = await _cases(client)
        rss_start = _rss_kb(process.pid)
        joptic.faults.set(status=503, rate=0.3, seed=11)

        tally, problems = Tally(), list[str]()
        statuses: Counter[int] = Counter()
        latency: dict[str, float] = dict.fromkeys((c.name for c in cases), 0.0)
        cpu_start = _cpu_seconds(process.pid)
        next_index = iter(range(QUERIES_TOTAL))
        done = 0
        rss_checkpoint: int | None = None

        async def worker() -> None:
            nonlocal done, rss_checkpoint
            for index in next_index:  # shared: each index is taken by one worker, once
                case = cases[index % len(cases)]
                sent = time.monotonic()
                response = await client.post(
                    "/graphql", json={"query": case.query, "variables": case.variables})
                latency[case.name] += time.monotonic() - sent
                statuses[response.status_code] += 1
                try:
                    body: Json = response.json()
                except ValueError:
                    body = {"text": response.text[:300]}
                _judge(case, response.status_code, body, tally, problems)
                done += 1
                if done == RSS_CHECKPOINT:
                    rss_checkpoint = _rss_kb(process.pid)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        seconds = time.monotonic() - started
        rss_end = _rss_kb(process.pid)
        cpu = _cpu_seconds(process.pid) - cpu_start
        joptic.faults.clear()
        failed_upstream = sum(r.status == 503 for r in joptic.log.records)

    print(f"\nsoak: {done} queries in {seconds:.1f} s = {done / seconds:.0f} requests/s "
          f"at concurrency {CONCURRENCY}; HTTP statuses {dict(statuses)}")
    print(f"soak: complete {tally.complete}, partial {tally.partial}, bad {tally.bad}, "
          f"served stale {tally.stale}; joptic upstream 503s {failed_upstream} "
          f"of {len(joptic.log)} requests")
    per_case = len(cases) / done * 1000
    print("soak: mean latency ms " + ", ".join(
        f"{name} {total * per_case:.0f}" for name, total in latency.items())
        + f"; gateway CPU {cpu:.1f} s ({cpu / seconds:.0%} of one core)")
    print(f"soak: RSS start {rss_start / 1024:.1f} MB, after {RSS_CHECKPOINT} "
          f"{(rss_checkpoint or 0) / 1024:.1f} MB, end {rss_end / 1024:.1f} MB")

    assert done == QUERIES_TOTAL
    assert not [s for s in statuses if s >= 500], statuses
    assert problems == [], f"{len(problems)} bad answers, first: {problems[:5]}"
    assert tally.complete + tally.partial == QUERIES_TOTAL
    assert failed_upstream > 0  # the fault really hit joptic
    assert rss_checkpoint is not None
    assert rss_end - rss_checkpoint <= RSS_GROWTH_LIMIT_KB, (rss_checkpoint, rss_end)
