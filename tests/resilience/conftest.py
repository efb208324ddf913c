"""Helpers of the resilience tests: gateway processes (``python -m gateway serve``) over the
session's emulators, each with a cache namespace of its own unless told to share one."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.emulators import DEMO_TOKENS, KINDS
from tests.conftest import RunningEmulator
from tests.helpers import free_port, wait_healthy

Emulators = dict[str, RunningEmulator]
REPO = Path(__file__).resolve().parents[2]


def new_namespace() -> str:
    """A cache namespace no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"


def _toml(emulators: Emulators, *, cache_url: str, namespace: str,
          response_cache: bool = False) -> str:
    # The development profile: /readyz in detail (test 6), and no cursor secret to invent.
    lines = ["[server]", 'profile = "development"', "",
             "[cache]", f'url = "{cache_url}"', f'namespace = "{namespace}"', "",
             "[response_cache]", f"enabled = {str(response_cache).lower()}", ""]
    for kind in KINDS:
        lines += ["[[sources]]", f'name = "{kind}"', f'kind = "{kind}"',
                  f'base_url = "{emulators[kind].url}"', f'token = "{DEMO_TOKENS[kind]}"', ""]
    return "\n".join(lines)


class GatewayProcess:
    """``python -m gateway serve`` in its own process, on a free port."""

    def __init__(self, config_file: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config_file),
             "--port", str(self.port), "--log-level", "warning"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        wait_healthy(self.url, timeout=timeout, exited=self._exited)

    def _exited(self) -> str | None:
        if self.process.poll() is None:
            return None
        _, err = self.process.communicate()
        return err.decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@contextmanager
def gateway_processes(emulators: Emulators, tmp_path: Path, cache_url: str,
                      namespaces: list[str], *, response_cache: bool = False
                      ) -> Iterator[list[GatewayProcess]]:
    """One gateway process per namespace (started together, so they boot in parallel)."""
    running: list[GatewayProcess] = []
    try:
        for i, namespace in enumerate(namespaces):
            path = tmp_path / f"gateway-{i}.toml"
            path.write_text(_toml(emulators, cache_url=cache_url, namespace=namespace,
                                  response_cache=response_cache))
            running.append(GatewayProcess(path))
        for process in running:
            process.wait_healthy()
        yield running
    finally:
        for process in running:
            process.stop()
