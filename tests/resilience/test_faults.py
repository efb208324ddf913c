"""Resilience end to end: injected upstream faults as a GraphQL client sees them.

Each test builds its own gateway over the session's emulators (no cache unless said otherwise) and
reads the emulators' request logs to count what reached the upstreams. Expected data is read
straight from the emulators with plain httpx clients, or from a fault-free run of the same query.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from gateway.config import Config, parse_config
from gateway.demo import DEMO_CORS_REGEX, demo_config
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS, KINDS
from gateway.emulators.common import RecordedRequest
from tests.conftest import RunningEmulator
from tests.helpers import post

Emulators = dict[str, RunningEmulator]
EmulatorOf = Callable[[str], RunningEmulator]

UNCACHED: dict[str, Any] = {"cache_ttl_seconds": 0, "group_cache_ttl_seconds": 0}
CARECLOUD_PAGE = """query($first: Int!, $after: String) {
  productGroups(first: $first, after: $after, filter: {sources: ["carecloud"]}) {
    totalCount pageInfo { hasNextPage endCursor } nodes { upstreamId name source { id } } } }"""
CROSS_SOURCE = """{ productGroups(first: 60) { totalCount nodes { name source { id } } } }"""


# -- helpers ------------------------------------------------------------------------------------


def _urls(emulators: Emulators) -> dict[str, str]:
    return {kind: running.url for kind, running in emulators.items()}


@contextmanager
def _gateway(config: Config) -> Iterator[str]:
    """The gateway for ``config`` on a real socket; yields its base URL."""
    with ServerThread({"gw": create_app(config)}) as servers:
        yield servers.urls["gw"]


def _timed_post(base: str, query: str, variables: Mapping[str, Any] | None = None
                ) -> tuple[httpx.Response, float]:
    """One GraphQL request: the HTTP response and the seconds it took."""
    started = time.monotonic()
    response = post(base, query, variables)
    return response, time.monotonic() - started


def _ask(base: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    response, _ = _timed_post(base, query, variables)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _errors(body: Mapping[str, Any]) -> list[tuple[str | None, str | None]]:
    return [(e.get("extensions", {}).get("code"), e.get("extensions", {}).get("source"))
            for e in body.get("errors") or []]


def _readyz(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _config(urls: Mapping[str, str], *, defaults: Mapping[str, Any],
            tokens: Mapping[str, str] | None = None, request_timeout: float = 15.0) -> Config:
    """demo_config's shape, with the tokens given (the demo tokens for the rest)."""
    tokens = {**DEMO_TOKENS, **(tokens or {})}
    return parse_config({
        "server": {"profile": "development", "host": "127.0.0.1", "port": 8000,
                   "cors_origin_regex": DEMO_CORS_REGEX,
                   "request_timeout_seconds": request_timeout},
        "cache": {"url": "memory://"},
        "defaults": dict(defaults),
        "sources": [{"name": kind, "kind": kind, "base_url": urls[kind], "token": tokens[kind]}
                    for kind in KINDS],
    }, origin="<test>")


def _carecloud_rows(running: RunningEmulator) -> list[dict[str, Any]]:
    """Every CareCloud group in the adapter's order (product_group_id ascending)."""
    with running.client() as client:
        response = client.get("/product-groups", params={
            "count": 1000, "sort_field": "product_group_id", "sort_direction": "asc"})
        response.raise_for_status()
        data = response.json()["data"]
    rows: list[dict[str, Any]] = data["product_groups"]
    assert len(rows) == data["total_items"]
    return rows


def _by_url(records: list[RecordedRequest]) -> dict[str, list[int]]:
    """Statuses per distinct URL (path and query), in arrival order."""
    statuses: dict[str, list[int]] = {}
    for record in sorted(records, key=lambda r: r.started):
        statuses.setdefault(f"{record.path}?{record.query}", []).append(record.status)
    return statuses


def _secrets(emulators: Emulators, *extra: str) -> list[str]:
    """Strings that must never reach a client or a log: tokens, and where the upstreams live."""
    hosts = [running.url.split("//", 1)[1] for running in emulators.values()]
    return [*DEMO_TOKENS.values(), *extra, *hosts]


# -- 1: random 503s are retried away ------------------------------------------------------------


def _seed_without_run(rate: float, *, run: int, draws: int = 60) -> int:
    """The first fault seed whose first ``draws`` emulator draws fail often (a quarter at least)
    but never ``run`` times in a row: with ``run - 1`` retries every request then succeeds."""
    for seed in range(1000):
        rng = random.Random(seed)
        hits = "".join("F" if rng.random() < rate else "." for _ in range(draws))
        if "F" * run not in hits and hits.count("F") >= draws // 4:
            return seed
    raise AssertionError("no such seed")


def test_half_of_carecloud_failing_is_retried_to_complete_answers(
        emulator_servers: Emulators, emulator: EmulatorOf) -> None:
    carecloud = emulator("carecloud")
    rows = _carecloud_rows(carecloud)
    config = demo_config(_urls(emulator_servers), defaults={
        **UNCACHED, "max_retries": 4, "retry_backoff_seconds": 0.01, "breaker_threshold": 1000})
    with _gateway(config) as base:
        # Fault-free: ten windows of different sizes, each after the one before.
        windows: list[tuple[int, str | None, int]] = []  # first, after, offset
        after: str | None = None
        offset = 0
        for first in range(3, 13):
            body = _ask(base, CARECLOUD_PAGE, {"first": first, "after": after})
            assert body.get("errors") is None, body
            windows.append((first, after, offset))
            after = body["data"]["productGroups"]["pageInfo"]["endCursor"]
            offset += first
        carecloud.log.clear()

        carecloud.faults.set(status=503, rate=0.5, seed=_seed_without_run(0.5, run=5))
        for first, after_, start in windows:
            body = _ask(base, CARECLOUD_PAGE, {"first": first, "after": after_})
            assert body.get("errors") is None, body
            page = body["data"]["productGroups"]
            assert page["totalCount"] == len(rows)
            assert page["pageInfo"]["hasNextPage"] is True
            expected = rows[start:start + first]
            assert [(n["upstreamId"], n["name"], n["source"]["id"]) for n in page["nodes"]] == [
                (str(r["product_group_id"]), r["name"], "carecloud") for r in expected]

    statuses = _by_url(carecloud.log.records)
    assert len(statuses) == 10, statuses  # one distinct upstream URL per window
    assert all(s[-1] == 200 and set(s[:-1]) <= {503} for s in statuses.values()), statuses
    retried = [url for url, s in statuses.items() if s[0] == 503]
    assert retried, statuses  # the fault really hit, and retries answered
    assert sum(s.count(503) for s in statuses.values()) >= 3, statuses


# -- 2: 429 with Retry-After is honoured --------------------------------------------------------


def test_429_retry_after_is_waited_for(emulator_servers: Emulators, emulator: EmulatorOf) -> None:
    carecloud = emulator("carecloud")
    config = demo_config(_urls(emulator_servers), defaults={
        **UNCACHED, "max_retries": 2, "retry_backoff_seconds": 0.01})
    with _gateway(config) as base:
        carecloud.faults.set(status=429, retry_after=1, count=1)
        response, seconds = _timed_post(base, CARECLOUD_PAGE, {"first": 5})
    assert response.status_code == 200
    body = response.json()
    assert body.get("errors") is None, body
    assert len(body["data"]["productGroups"]["nodes"]) == 5
    assert seconds >= 1.0
    first, second = sorted(carecloud.log.records, key=lambda r: r.started)
    assert (first.status, second.status) == (429, 200)
    assert (first.path, first.query) == (second.path, second.query)
    assert second.started - first.finished >= 1.0
    assert seconds < 5.0


# -- 3: a hanging source, its breaker, and its recovery -----------------------------------------


def test_hanging_source_times_out_opens_its_breaker_and_recovers(
        emulator_servers: Emulators, emulator: EmulatorOf) -> None:
    joptic = emulator("joptic")
    config = demo_config(_urls(emulator_servers), request_timeout=2, defaults={
        **UNCACHED, "timeout_seconds": 1, "max_retries": 2, "retry_backoff_seconds": 0.01,
        "breaker_threshold": 2, "breaker_reset_seconds": 1})
    with _gateway(config) as base:
        reference = _ask(base, CROSS_SOURCE)
        assert reference.get("errors") is None, reference
        total = reference["data"]["productGroups"]["totalCount"]
        assert isinstance(total, int) and total > 60

        joptic.faults.set(hang=True)
        opened = False
        for _ in range(4):  # each query costs joptic at least one timed-out try
            response, seconds = _timed_post(base, CROSS_SOURCE)
            assert response.status_code == 200
            body = response.json()
            assert seconds < 2.5
            page = body["data"]["productGroups"]
            assert page["totalCount"] is None
            # The nodes are the other sources' (the first 60 are CareCloud's, in source order).
            assert page["nodes"] == reference["data"]["productGroups"]["nodes"]
            if _errors(body) == [("UPSTREAM_UNAVAILABLE", "joptic")]:
                opened = True  # an open breaker answered this one: the loop has gone far enough
                break
            assert _errors(body) == [("UPSTREAM_TIMEOUT", "joptic")], body
            if _readyz(base)["sources"]["joptic"]["breaker"] == "open":
                opened = True
                break
        assert opened

        # Open: joptic is not asked at all (a request would now be answered and logged at once).
        joptic.faults.set(status=503)
        joptic.log.clear()
        response, seconds = _timed_post(base, CROSS_SOURCE)
        body = response.json()
        assert response.status_code == 200 and seconds < 2.5, seconds  # the request timeout
        assert len(joptic.log) == 0
        assert _errors(body) == [("UPSTREAM_UNAVAILABLE", "joptic")], body
        assert "joptic" in body["errors"][0]["message"]
        assert body["data"]["productGroups"]["nodes"] == reference["data"]["productGroups"]["nodes"]
        ready = _readyz(base)
        assert ready["status"] == "degraded"
        assert ready["sources"]["joptic"]["breaker"] == "open"
        assert all(ready["sources"][kind]["breaker"] == "closed"
                   for kind in ("carecloud", "axim", "comestri"))

        # Recovery: no fault, the reset waited out, a probe passes and closes the breaker.
        joptic.faults.clear()
        time.sleep(1.1)
        assert _readyz(base)["sources"]["joptic"]["breaker"] == "half-open"
        body = _ask(base, CROSS_SOURCE)
        assert body.get("errors") is None, body
        assert body["data"] == reference["data"]
        joptic_only = _ask(base, """{ productGroups(first: 5, filter: {sources: ["joptic"]}) {
            nodes { source { id } } } }""")
        assert joptic_only.get("errors") is None, joptic_only
        assert [n["source"]["id"] for n in joptic_only["data"]["productGroups"]["nodes"]] == [
            "joptic"] * 5
        ready = _readyz(base)
        assert ready["status"] == "ready"
        assert ready["sources"]["joptic"]["breaker"] == "closed"
        assert ready["sources"]["joptic"]["consecutiveFailures"] == 0


# -- 4: malformed JSON --------------------------------------------------------------------------


def test_malformed_json_is_a_bad_response_of_that_source(
        emulator_servers: Emulators, emulator: EmulatorOf) -> None:
    comestri = emulator("comestri")
    config = demo_config(_urls(emulator_servers), defaults=UNCACHED)
    with _gateway(config) as base:
        comestri.faults.set(malformed=True)
        response, _ = _timed_post(base, "{ products(first: 5) { totalCount nodes { id name } } }")
    assert response.status_code == 200, response.text
    assert "Traceback" not in response.text
    body = response.json()
    # products is non-null in the schema and comestri is its only source: data is null.
    products = (body.get("data") or {}).get("products")
    if products is not None:
        assert products["totalCount"] is None
    assert ("UPSTREAM_BAD_RESPONSE", "comestri") in _errors(body), body
    assert {source for _, source in _errors(body)} == {"comestri"}
    assert "comestri" in body["errors"][0]["message"]
    assert len(comestri.log) >= 1


# -- 5: other 4xx are not retried ---------------------------------------------------------------


WRONG_TOKEN = "wrong-axim-token-3f9c"  # the test's wrong credential (no secret)


def test_refused_credentials_are_not_retried_and_not_leaked(
        emulator_servers: Emulators, emulator: EmulatorOf) -> None:
    axim = emulator("axim")
    config = _config(_urls(emulator_servers), tokens={"axim": WRONG_TOKEN}, defaults={
        **UNCACHED, "max_retries": 4, "retry_backoff_seconds": 0.01})
    with _gateway(config) as base:
        response, _ = _timed_post(base, """{ productGroups(first: 5, filter: {sources: ["axim"]}) {
            totalCount nodes { name products(first: 2) { nodes { name } } } } }""")
        assert response.status_code == 200
        body = response.json()
        assert _errors(body) == [("UPSTREAM_UNAUTHORIZED", "axim")], body
        assert "axim" in body["errors"][0]["message"]
        assert body["errors"][0]["extensions"].get("retryable") is False
        for secret in _secrets(emulator_servers, WRONG_TOKEN):
            assert secret not in response.text, secret
        assert "://" not in response.text

    statuses = _by_url(axim.log.records)
    assert statuses, "axim was not asked"
    assert all(s == [401] for s in statuses.values()), statuses
    assert all(r.headers.get("accesstoken") == WRONG_TOKEN for r in axim.log.records)


# -- 6: no token in errors or logs --------------------------------------------------------------


def test_failures_log_no_token(emulator_servers: Emulators, emulator: EmulatorOf,
                               caplog: pytest.LogCaptureFixture) -> None:
    for name in ("gateway", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    emulator("joptic").faults.set(status=503)
    emulator("comestri").faults.set(malformed=True)
    config = _config(_urls(emulator_servers), tokens={"axim": WRONG_TOKEN}, defaults={
        **UNCACHED, "max_retries": 1, "retry_backoff_seconds": 0.01})
    texts: list[str] = []
    with _gateway(config) as base:
        for query in (CROSS_SOURCE,
                      "{ products(first: 5) { totalCount nodes { id } } }",
                      """{ productGroups(first: 3, filter: {sources: ["axim"]}) {
                          nodes { products(first: 2) { nodes { name } } } } }"""):
            response, _ = _timed_post(base, query)
            assert response.status_code == 200
            assert response.json().get("errors"), response.text
            texts.append(response.text)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert any(r.name.startswith("httpx") for r in caplog.records)
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), record.exc_text or ""]
    texts.append(caplog.text)
    tokens = [*DEMO_TOKENS.values(), WRONG_TOKEN]
    for text in texts:
        for token in tokens:
            assert token not in text, (token, text[:500])


# -- the emulators' hang fault ------------------------------------------------------------------


def test_a_hung_request_is_logged_once_its_client_gives_up(emulator: EmulatorOf) -> None:
    joptic = emulator("joptic")
    joptic.faults.set(hang=True, count=1)
    with joptic.client() as client, pytest.raises(httpx.ReadTimeout):
        client.get("/product-groups", timeout=0.3)
    deadline = time.monotonic() + 2
    while not joptic.log.records and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.path for r in joptic.log.records] == ["/product-groups"]
