"""Client identities cannot be borrowed (issue 23), over real sockets.

* An address is the peer's unless a proxy of ``[server] forwarded_allow_ips`` says otherwise:
  ``X-Forwarded-For`` from anyone else is ignored (a ``serve`` subprocess, as deployed).
* An address that fails to authenticate ``failed_auth_per_minute`` times is refused before its
  credentials are read, good ones too.
* A JWKS URL that hangs costs one fetch: tokens whose key is known are answered at once, and
  unknown ``kid``\\ s are refused at once instead of queueing behind it.
* An API-key client and a bearer token's subject of the same name are two clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import gateway.access.auth
from gateway.access.rate_limits import RateLimited, RateLimits
from gateway.config import Config, ConfigError, RateLimitSettings
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS
from tests.clock import ManualClock
from tests.conftest import RunningEmulator
from tests.edge.access_setup import (
    AUDIENCE,
    HMAC_SECRET,
    ISSUER,
    SOURCES,
    first_code,
    key_set,
    rsa_key,
    served,
    signed_token,
    uncached_config,
)
from tests.helpers import free_port, post
from tests.leaks import SecretScan, SessionLog
from tests.processes import Process

Emulators = dict[str, RunningEmulator]
Json = dict[str, Any]

JOPTIC = '{ productGroups(first: 3, filter: {sources: ["joptic"]}) { nodes { name } } }'


@pytest.fixture
def emulators(emulator_servers: Emulators,
              emulator: Callable[[str], RunningEmulator]) -> Emulators:
    return emulator_servers


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# --- forwarded addresses -------------------------------------------------------------------------


def _serve_config(path: Path, emulators: Emulators, server: str) -> Path:
    sources = "".join(
        f'[[sources]]\nname = "{kind}"\nkind = "{kind}"\nbase_url = "{e.url}"\n'
        f'token = "{DEMO_TOKENS[kind]}"\n' for kind, e in emulators.items())
    path.write_text('[server]\nport = 0\ncursor_secret = "s3cret-cursor-key-0123"\n'
                    f"drain_seconds = 0\n{server}\n"
                    "[rate_limits]\nrequests_per_minute = 2\n\n"
                    "[defaults]\ncache_ttl_seconds = 0\ngroup_cache_ttl_seconds = 0\n"
                    f"{sources}")
    return path


@pytest.mark.parametrize("trusted", [False, True], ids=["no-proxy-trusted", "loopback-trusted"])
def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy(
        tmp_path: Path, emulator_servers: Emulators, trusted: bool) -> None:
    """Three anonymous requests from 127.0.0.1, each claiming another address, under a limit of
    two a minute: by default the header is ignored (uvicorn's own default would believe it from
    127.0.0.1), so they are one client and the third is refused; with the loopback proxy
    trusted they are three clients, and one of them is still held to its two."""
    server = 'forwarded_allow_ips = ["127.0.0.1"]\n' if trusted else ""
    config = _serve_config(tmp_path / "gateway.toml", emulator_servers, server)
    with Process([sys.executable, "-m", "gateway", "serve", "--config", str(config)]) as serve:
        url = serve.wait_for(r"Uvicorn running on (http://[\d.:]+)").group(1)

        def claiming(forwarded: str) -> httpx.Response:
            return post(url, SOURCES, headers={"X-Forwarded-For": forwarded,
                                               "X-Forwarded-Proto": "https"})

        answers = [claiming(f"203.0.113.{i}") for i in (1, 2, 3)]
        if trusted:
            assert [a.status_code for a in answers] == [200, 200, 200], answers[-1].text
            # Each forwarded client has its own window of two.
            assert claiming("203.0.113.1").status_code == 200
            refused = claiming("203.0.113.1")
        else:
            assert [a.status_code for a in answers[:2]] == [200, 200]
            refused = answers[2]
        assert refused.status_code == 429, refused.text
        assert first_code(refused) == "RATE_LIMITED"
        assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_forwarded_allow_ips_must_be_addresses_or_networks(emulators: Emulators) -> None:
    for bad in ("*", "localhost", "10.0.0.1/8"):
        with pytest.raises(ConfigError, match="forwarded_allow_ips"):
            uncached_config(emulators, server={"profile": "development",
                                       "forwarded_allow_ips": [bad]})
    config = uncached_config(emulators, server={"profile": "development",
                                        "forwarded_allow_ips": ["10.0.0.0/8", "::1"]})
    assert config.server.forwarded_allow_ips == ("10.0.0.0/8", "::1")


# --- failed authentications ----------------------------------------------------------------------


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_an_address_that_fails_to_authenticate_too_often_is_refused_even_with_a_good_key(
        emulators: Emulators, no_secret_leaks: SecretScan, redis_url: str, store: str) -> None:
    scan = no_secret_leaks
    key = "ak_" + secrets.token_urlsafe(24)
    scan.add_secret(key)
    auth = {"required": True, "api_keys": [{"client": "shop", "sha256": _digest(key)}]}
    config = uncached_config(emulators, auth=auth, rate_limits={"failed_auth_per_minute": 5},
                     cache_url=redis_url if store == "redis" else "memory://")
    with served(config) as gw:
        good, bad = {"X-API-Key": key}, {"X-API-Key": key + "x"}
        # Good keys never count as failures: ten of them leave all five failures to spend.
        assert [post(gw, SOURCES, headers=good, scan=scan).status_code
                for _ in range(10)] == [200] * 10
        for _ in range(5):
            refused = post(gw, SOURCES, headers=bad, scan=scan)
            assert refused.status_code == 401 and first_code(refused) == "UNAUTHENTICATED"
        # The sixth request from the address is refused before its key is read, good or not.
        for headers in (good, bad):
            limited = post(gw, SOURCES, headers=headers, scan=scan)
            assert limited.status_code == 429, limited.text
            assert first_code(limited) == "RATE_LIMITED"
            assert "failed authentications" in limited.json()["errors"][0]["message"]
            assert 1 <= int(limited.headers["retry-after"]) <= 60
    if store == "redis":  # shared by every process, apart from the clients' counters
        with redis.Redis.from_url(redis_url) as client:
            assert client.keys(f"{config.cache.namespace}:limits*failed:127.0.0.1*")


def test_failed_authentications_are_not_counted_when_off(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    scan = no_secret_leaks
    auth = {"required": True, "api_keys": [{"client": "shop", "sha256": _digest("k" * 20)}]}
    with served(uncached_config(emulators, auth=auth,
                          rate_limits={"failed_auth_per_minute": 0})) as gw:
        assert {post(gw, SOURCES, headers={"X-API-Key": "wrong"}, scan=scan).status_code
                for _ in range(40)} == {401}


async def test_a_failing_counter_store_admits_attempts(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    """A Redis that is down neither refuses a request nor fails it: the failure is logged."""
    limits = RateLimits(RateLimitSettings(failed_auth_per_minute=1),
                        cache=f"redis://127.0.0.1:{free_port()}/0", namespace="t")
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.rate_limits"):
            for _ in range(3):
                await limits.failed("198.51.100.7")
                await limits.admit_attempt("198.51.100.7")
    finally:
        await limits.aclose()
    assert "rate limit store failed" in caplog.text


async def test_failures_are_counted_per_address() -> None:
    limits = RateLimits(RateLimitSettings(failed_auth_per_minute=2), cache="memory://",
                        namespace="t")
    for _ in range(2):
        await limits.admit_attempt("198.51.100.7")
        await limits.failed("198.51.100.7")
    with pytest.raises(RateLimited) as refused:
        await limits.admit_attempt("198.51.100.7")
    assert refused.value.code == "RATE_LIMITED" and 1 <= refused.value.retry_after <= 60
    await limits.admit_attempt("198.51.100.8")  # another address has its own count


# --- JSON Web Key Sets ---------------------------------------------------------------------------


class KeySetServer:
    """A JWKS URL whose answers a test scripts: ``mode`` "ok" serves ``keys``, "error" answers
    500, "hang" waits until :meth:`release` (then serves ``keys``). ``fetches`` counts the
    requests that reached it."""

    def __init__(self, keys: Json) -> None:
        self.keys = keys
        self.mode = "ok"
        self.fetches = 0
        self._released = asyncio.Event()
        self._servers = ServerThread({"jwks": Starlette(routes=[Route("/jwks.json",
                                                                      self._serve)])})

    async def _serve(self, request: Request) -> Response:
        self.fetches += 1
        if self.mode == "error":
            return Response("down", status_code=500)
        if self.mode == "hang":
            await self._released.wait()
        return JSONResponse(self.keys)

    def release(self) -> None:
        async def release() -> None:
            self._released.set()

        self._servers.run(release())

    @property
    def url(self) -> str:
        return f"{self._servers.urls['jwks']}/jwks.json"

    def wait_for_fetches(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.fetches < count:
            assert time.monotonic() < deadline, f"{self.fetches} fetches, not {count}"
            time.sleep(0.01)

    def __enter__(self) -> KeySetServer:
        self._servers.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()  # a request still hanging ends, so the server stops at once
        self._servers.stop()


def _key_set(*keys: tuple[Any, str]) -> Json:
    return {"keys": [k for key, kid in keys for k in key_set(key, kid)["keys"]]}


@contextmanager
def _jwks_gateway(emulators: Emulators, url: str, clock: ManualClock) -> Iterator[str]:
    auth = {"required": True, "jwt": {"algorithms": ["RS256"], "jwks_url": url,
                                      "audience": AUDIENCE, "issuer": ISSUER}}
    config: Config = uncached_config(emulators, auth=auth)
    with ServerThread({"gw": create_app(config, clock=clock.clock)}) as servers:
        yield servers.urls["gw"]


def _timed(gw: str, scan: SecretScan, token: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = post(gw, SOURCES, headers={"Authorization": f"Bearer {token}"}, scan=scan)
    return response, time.monotonic() - started


def _message(response: httpx.Response) -> str:
    message: str = response.json()["errors"][0]["message"]
    return message


def test_a_hanging_key_set_url_holds_one_fetch_and_no_token_whose_key_is_known(
        emulators: Emulators, no_secret_leaks: SecretScan, manual: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    scan = no_secret_leaks
    # The key set's URL hangs past the test.
    monkeypatch.setattr(gateway.access.auth, "JWKS_FETCH_TIMEOUT_SECONDS", 30)
    (k1, _), (k2, _) = rsa_key(), rsa_key()
    tokens = {kid: signed_token(key, "RS256", kid=kid)
              for key, kid in ((k1, "k1"), (k2, "k2"), (k2, "k3"), (k2, "k4"))}
    for token in tokens.values():
        scan.add_secret(token)
    with KeySetServer(_key_set((k1, "k1"))) as jwks, \
            _jwks_gateway(emulators, jwks.url, manual) as gw:
        first, _ = _timed(gw, scan, tokens["k1"])  # no key known yet: the first fetch
        assert first.status_code == 200, first.text
        assert jwks.fetches == 1

        # The issuer rotates to k2, and its URL stops answering.
        jwks.keys, jwks.mode = _key_set((k1, "k1"), (k2, "k2")), "hang"
        manual.advance(31)  # past the cooldown: an unknown kid may fetch again
        waiting: list[httpx.Response] = []
        waiter = threading.Thread(target=lambda: waiting.append(
            _timed(gw, scan, tokens["k2"])[0]))
        waiter.start()
        jwks.wait_for_fetches(2)

        known, took = _timed(gw, scan, tokens["k1"])
        assert known.status_code == 200 and took < 1, (known.text, took)
        for kid in ("k3", "k4", "k2"):  # unknown while the fetch is in flight: at once
            refused, took = _timed(gw, scan, tokens[kid])
            assert refused.status_code == 401 and took < 1, (kid, refused.text, took)
            assert first_code(refused) == "UNAUTHENTICATED"
            assert "is not signed by a known key" in _message(refused)
        assert jwks.fetches == 2  # one fetch reached the URL, whatever came meanwhile
        assert waiter.is_alive()  # the token that started it waits for it …

        jwks.release()
        waiter.join(10)
        assert waiting and waiting[0].status_code == 200, waiting  # … and the new key serves
        assert _timed(gw, scan, tokens["k2"])[0].status_code == 200
        assert jwks.fetches == 2


def test_known_keys_are_refetched_in_the_background_once_old(
        emulators: Emulators, no_secret_leaks: SecretScan, manual: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    scan = no_secret_leaks
    monkeypatch.setattr(gateway.access.auth, "JWKS_FETCH_TIMEOUT_SECONDS", 30)
    (k1, _), (k2, _) = rsa_key(), rsa_key()
    old, new = signed_token(k1, "RS256", kid="k1"), signed_token(k2, "RS256", kid="k2")
    scan.add_secret(old)
    scan.add_secret(new)
    with KeySetServer(_key_set((k1, "k1"))) as jwks, \
            _jwks_gateway(emulators, jwks.url, manual) as gw:
        assert _timed(gw, scan, old)[0].status_code == 200
        jwks.keys, jwks.mode = _key_set((k1, "k1"), (k2, "k2")), "hang"
        manual.advance(301)  # the keys are past their lifespan
        answer, took = _timed(gw, scan, old)
        assert answer.status_code == 200 and took < 1, (answer.text, took)
        jwks.wait_for_fetches(2)  # refetched meanwhile, in the background
        jwks.release()
        deadline = time.monotonic() + 10
        while (answer := _timed(gw, scan, new)[0]).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.05)
        assert jwks.fetches == 2  # the new key came with the refresh, not a fetch of its own


def test_an_unreachable_key_set_is_logged_without_the_url_and_retried_after_the_cooldown(
        emulators: Emulators, no_secret_leaks: SecretScan, manual: ManualClock,
        session_log: SessionLog, monkeypatch: pytest.MonkeyPatch) -> None:
    scan = no_secret_leaks
    key, _ = rsa_key()
    token = signed_token(key, "RS256", kid="k1")
    url_secret = "jwks-" + secrets.token_urlsafe(16)
    scan.add_secret(token)
    scan.add_secret(url_secret)
    monkeypatch.setattr(gateway.access.auth, "JWKS_FETCH_TIMEOUT_SECONDS", 0.3)
    with KeySetServer(_key_set((key, "k1"))) as jwks, \
            _jwks_gateway(emulators, f"{jwks.url}?access={url_secret}", manual) as gw:
        _, logged = session_log.since(0)
        jwks.mode = "error"
        refused = _timed(gw, scan, token)[0]
        assert refused.status_code == 401, refused.text
        assert "the key set is unreachable" in _message(refused)
        lines, _ = session_log.since(logged)
        assert any("JWKS fetch failed: HTTPStatusError (HTTP 500)" in line for line in lines)
        # Within the cooldown: refused at once, the URL left alone.
        assert "the key set is unreachable" in _message(_timed(gw, scan, token)[0])
        assert jwks.fetches == 1

        manual.advance(31)
        jwks.mode = "hang"  # and answers in no time: the fetch gives up at its deadline
        refused, took = _timed(gw, scan, token)
        assert refused.status_code == 401 and "unreachable" in _message(refused)
        assert 0.25 < took < 3, took
        assert jwks.fetches == 2

        manual.advance(31)
        jwks.mode = "ok"
        assert _timed(gw, scan, token)[0].status_code == 200
        assert jwks.fetches == 3


# --- namespaces ----------------------------------------------------------------------------------


def test_an_api_key_client_and_a_token_subject_of_the_same_name_are_two_clients(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    scan = no_secret_leaks
    key = "ak_" + secrets.token_urlsafe(24)
    token = signed_token(subject="shop")
    for secret in (key, token, HMAC_SECRET):
        scan.add_secret(secret)
    auth = {"required": True,
            "api_keys": [{"client": "shop", "sha256": _digest(key)}],
            "jwt": {"algorithms": ["HS256"], "secret": HMAC_SECRET, "audience": AUDIENCE,
                    "issuer": ISSUER}}
    config = uncached_config(emulators, auth=auth, rate_limits={"requests_per_minute": 2},
                     response_cache={"enabled": True},
                     defaults={"cache_ttl_seconds": 60, "group_cache_ttl_seconds": 60})
    with served(config) as gw:
        by_key, by_token = {"X-API-Key": key}, {"Authorization": f"Bearer {token}"}
        first = post(gw, JOPTIC, headers=by_key, scan=scan)
        assert first.status_code == 200 and first.headers["x-response-cache"] == "miss"
        assert post(gw, JOPTIC, headers=by_key, scan=scan).headers["x-response-cache"] == "hit"
        # "key:shop" spent its two.
        assert post(gw, JOPTIC, headers=by_key, scan=scan).status_code == 429

        # The token's "shop" has an answer of its own, and a window of its own.
        mine = post(gw, JOPTIC, headers=by_token, scan=scan)
        assert mine.status_code == 200, mine.text
        assert mine.headers["x-response-cache"] == "miss"
        assert mine.json() == first.json()
        assert post(gw, JOPTIC, headers=by_token, scan=scan).headers["x-response-cache"] == "hit"
        assert post(gw, JOPTIC, headers=by_token, scan=scan).status_code == 429
