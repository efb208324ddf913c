"""SIGHUP to ``serve`` as an operator sends it, with and without ``--workers``, under steady load
and with a slow request in flight: a fourth source added to the file is listed by the next
queries; a broken file is refused with check-config's message and the running configuration
serves on; no request fails across either."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.emulators import DEMO_TOKENS
from gateway.emulators.common import Fault
from tests.conftest import RunningEmulator
from tests.helpers import eventually, free_port, wait_healthy
from tests.observed import GROUP_PRODUCTS
from tests.processes import Process

SOURCES = "{ sources { id } }"


def write_config(path: Path, emulators: dict[str, RunningEmulator], kinds: list[str]) -> None:
    sources = "".join(
        f'[[sources]]\nname = "{kind}"\nkind = "{kind}"\nbase_url = "{emulators[kind].url}"\n'
        f'token = "{DEMO_TOKENS[kind]}"\n' for kind in kinds)
    path.write_text('[server]\nport = 0\ncursor_secret = "s3cret-cursor-key-0123"\n'
                    "drain_seconds = 0\n[defaults]\ncache_ttl_seconds = 0\n"
                    f"group_cache_ttl_seconds = 0\n{sources}")


class Load:
    """Two clients asking for the sources in a loop; every answer's source ids, or the failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[str, ...]] = []
        self.failures: list[str] = []
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stopped.is_set():
                try:
                    body = client.post(f"{self.url}/graphql", json={"query": SOURCES}).json()
                    self.answers.append(tuple(s["id"] for s in body["data"]["sources"]))
                    if body.get("errors"):
                        self.failures.append(str(body["errors"]))
                except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
                    self.failures.append(repr(exc))
                time.sleep(0.005)

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(30)


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_adds_a_source_refuses_a_broken_file_and_fails_no_request(
        tmp_path: Path, emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator], workers: int) -> None:
    config = tmp_path / "gateway.toml"
    three, four = ["carecloud", "joptic", "axim"], ["carecloud", "joptic", "axim", "comestri"]
    write_config(config, emulator_servers, three)
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config)]
    if workers > 1:
        argv += ["--workers", str(workers), "--port", str(free_port())]
    with Process(argv) as serve:
        url = serve.wait_for(r"Uvicorn running on (http://[\d.:]+)").group(1)
        wait_healthy(url)
        emulator("axim").faults.set(Fault(latency_ms=1500))
        load = Load(url)
        slow: list[httpx.Response] = []
        in_flight = threading.Thread(target=lambda: slow.append(
            httpx.post(f"{url}/graphql", json={"query": GROUP_PRODUCTS}, timeout=60)))
        try:
            in_flight.start()
            time.sleep(0.5)  # the slow request is on its way to Axim
            write_config(config, emulator_servers, four)
            # Under --workers one may still be starting: it is told once it has started.
            os.kill(serve.pid, signal.SIGHUP)
            eventually(lambda: serve.output.count('"configuration reloaded"') == workers)
            eventually(lambda: load.answers[-10:] == [tuple(four)] * 10)
            in_flight.join(30)
            added_at = len(load.answers)

            config.write_text(config.read_text().replace("[defaults]", "[defualts]"))
            os.kill(serve.pid, signal.SIGHUP)
            serve.wait_for(r"reload refused", timeout=20)
            time.sleep(1)  # every worker would have reloaded by now
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        finally:
            load.stop()
        if workers > 1:  # a worker that dies comes back on the running configuration
            pid = int(re.findall(r"Started server process \[(\d+)\]", serve.output)[0])
            os.kill(pid, signal.SIGKILL)
            serve.wait_for(rf"Child process \[{pid}\] died", timeout=30)
            eventually(lambda: serve.output.count("Started server process") > workers)
            answers = {tuple(s["id"] for s in httpx.post(
                f"{url}/graphql", json={"query": SOURCES}, timeout=30).json()["data"]["sources"])
                for _ in range(20)}
            assert answers == {tuple(four)}
    assert load.failures == []
    assert slow and slow[0].status_code == 200 and "errors" not in slow[0].json(), slow
    assert set(load.answers[added_at:]) == {tuple(four)}  # the broken file changed nothing
    # check-config's message; under --workers the supervisor refused it before any worker.
    assert "[defualts]: unknown table (did you mean [defaults]?)" in serve.output, serve.output
    assert serve.output.count('"configuration reloaded"') == workers, serve.output
    assert "Traceback" not in serve.output, serve.output


def test_sighup_while_the_workers_start_reaches_each_once_it_has_started(
        tmp_path: Path, emulator_servers: dict[str, RunningEmulator]) -> None:
    """A worker signalled before its app installed the handler would die of SIGHUP."""
    config = tmp_path / "gateway.toml"
    write_config(config, emulator_servers, ["carecloud", "joptic"])
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--workers", "2",
            "--port", str(free_port())]
    with Process(argv) as serve:
        serve.wait_for(r"Started parent process")
        write_config(config, emulator_servers, ["carecloud", "joptic", "axim"])
        os.kill(serve.pid, signal.SIGHUP)  # the workers are still importing the app
        url = serve.wait_for(r"Uvicorn running on (http://[\d.:]+)").group(1)
        eventually(lambda: serve.output.count('"configuration reloaded"') == 2)
        answers = {tuple(s["id"] for s in httpx.post(
            f"{url}/graphql", json={"query": SOURCES}, timeout=30).json()["data"]["sources"])
            for _ in range(20)}
    assert answers == {("carecloud", "joptic", "axim")}
    assert "died" not in serve.output and "Traceback" not in serve.output, serve.output
