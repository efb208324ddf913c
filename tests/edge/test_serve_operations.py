"""``serve`` as an operator runs it, in a subprocess over the session's emulators: SIGTERM drains
and finishes what is in flight; ``--workers 2`` metrics add up across the workers."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.emulators import DEMO_TOKENS, KINDS
from gateway.emulators.common import Fault
from tests.conftest import RunningEmulator
from tests.helpers import free_port, wait_healthy
from tests.observed import GROUP_PRODUCTS, PRODUCTS, scrape
from tests.processes import Process


def _config(path: Path, emulators: dict[str, RunningEmulator], server: str = "") -> Path:
    sources = "".join(
        f'[[sources]]\nname = "{kind}"\nkind = "{kind}"\nbase_url = "{e.url}"\n'
        f'token = "{DEMO_TOKENS[kind]}"\n' for kind, e in emulators.items())
    if "drain_seconds" not in server:
        server += "drain_seconds = 0\n"  # stop at once (the drain has its own test)
    path.write_text('[server]\nport = 0\ncursor_secret = "s3cret-cursor-key-0123"\n'
                    f'access_log = true\n{server}\n'
                    "[defaults]\ncache_ttl_seconds = 0\ngroup_cache_ttl_seconds = 0\n"
                    f"{sources}")
    return path


def _refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        return False
    return False


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_then_finishes_the_request_in_flight_and_exits_0(
        tmp_path: Path, emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator], workers: int) -> None:
    """Also with ``--workers``: once the drain is over, a new connection is refused at once
    (uvicorn's supervisor kept the listening socket open: connections queued unanswered)."""
    config = _config(tmp_path / "gateway.toml", emulator_servers,
                     "drain_seconds = 1.5\ngrace_seconds = 20\n")
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config)]
    if workers > 1:
        argv += ["--workers", str(workers), "--port", str(free_port())]
    with Process(argv) as serve:
        url = serve.wait_for(r"Uvicorn running on (http://[\d.:]+)").group(1)
        wait_healthy(url)  # workers listen once started
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        emulator("axim").faults.set(Fault(latency_ms=3000))
        answers: list[httpx.Response] = []
        slow = threading.Thread(target=lambda: answers.append(
            httpx.post(f"{url}/graphql", json={"query": GROUP_PRODUCTS}, timeout=60)))
        slow.start()
        time.sleep(0.5)  # on its way upstream (and in flight at the gateway in any case)
        signalled = time.monotonic()
        os.kill(serve.pid, signal.SIGTERM)
        # Draining: not ready, still serving.
        serve.wait_for(r"SIGTERM: draining", timeout=10)
        readyz = httpx.get(f"{url}/readyz", timeout=10)
        assert readyz.status_code == 503 and readyz.json() == {"status": "draining"}
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        # Then no new connection is accepted, while the slow request is still in flight.
        while not _refused(url):
            assert time.monotonic() - signalled < 15, "still accepting connections"
            time.sleep(0.05)
        assert slow.is_alive(), "the slow request ended before the server stopped accepting"
        slow.join(30)
        code = serve.stop(signal.SIGTERM, timeout=30)
    assert answers and answers[0].status_code == 200
    assert "errors" not in answers[0].json(), answers[0].text
    assert code == 0, serve.output
    assert time.monotonic() - signalled < 20


def test_metrics_add_up_across_two_workers(
        tmp_path: Path, emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator]) -> None:
    config = _config(tmp_path / "gateway.toml", emulator_servers)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--workers", "2",
            "--port", str(free_port())]
    with Process(argv, env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as serve:
        url = serve.wait_for(r"Uvicorn running on (http://[\d.:]+)").group(1)
        wait_healthy(url)
        requests = 12
        for i in range(requests):  # a new connection each: the kernel spreads them
            query = GROUP_PRODUCTS if i % 2 else PRODUCTS
            assert httpx.post(f"{url}/graphql", json={"query": query},
                              timeout=30).status_code == 200
        seen = {kind: len(emulator(kind).log) for kind in KINDS}
        scrapes = [scrape(url) for _ in range(4)]  # whichever worker answers
        pids = {p.name.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
        assert serve.stop(signal.SIGTERM) == 0
    assert len(pids) == 2, pids  # both workers count into the shared files
    for metrics in scrapes:
        assert metrics.total("gateway_graphql_requests_total") == requests
        for kind in KINDS:
            assert metrics.total("gateway_upstream_requests_total", source=kind) == seen[kind]
        assert metrics.total("gateway_upstream_breaker_state", source="axim",
                             state="closed") == 2


def test_metrics_on_their_own_port_are_off_the_gateway_port(
        tmp_path: Path, emulator_servers: dict[str, RunningEmulator]) -> None:
    metrics_port = free_port()
    config = _config(tmp_path / "gateway.toml", emulator_servers)
    config.write_text(config.read_text() + f"\n[metrics]\nport = {metrics_port}\n")
    with Process([sys.executable, "-m", "gateway", "serve", "--config", str(config)]) as serve:
        url = serve.wait_for(r"Uvicorn running on (http://[\d.:]+)").group(1)
        assert httpx.post(f"{url}/graphql", json={"query": PRODUCTS},
                          timeout=30).status_code == 200
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 404
        metrics = scrape(f"http://127.0.0.1:{metrics_port}")
        assert serve.stop(signal.SIGTERM) == 0
    assert metrics.total("gateway_graphql_requests_total", operation="Products") == 1
