"""BreakerTransport and SourceHealth over a scripted upstream: open, half-open, report."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from datetime import datetime

import httpx
import pytest

from gateway.errors import UpstreamUnavailable
from gateway.upstream.breaker import BreakerPolicy, BreakerState, BreakerTransport, SourceHealth
from tests.upstream.scripted import SOURCE, Answer, Script, client_over, ext, state, until

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def utc_seconds(iso: str) -> float:
    """The POSIX time of a report's ``2024-01-31T12:00:00Z``: the report's times are UTC."""
    return datetime.fromisoformat(iso).timestamp()


def guarded(script: Script, threshold: int = 3, reset: float = 0.1
            ) -> tuple[BreakerTransport, SourceHealth]:
    health = SourceHealth(SOURCE, BreakerPolicy(threshold=threshold, reset=reset))
    return BreakerTransport(httpx.MockTransport(script), health=health), health


async def fail_times(client: httpx.AsyncClient, times: int) -> None:
    for _ in range(times):
        with contextlib.suppress(httpx.HTTPError):
            await client.get("/items", extensions=ext())



@pytest.mark.parametrize(
    "failure", [500, 502, 503, httpx.ConnectError, httpx.ReadTimeout, httpx.ConnectTimeout])
async def test_breaker_opens_after_threshold_consecutive_failures(failure: Answer) -> None:
    script = Script(failure)
    transport, health = guarded(script, reset=30.0)
    async with client_over(transport) as client:
        await fail_times(client, 2)
        assert state(health) is BreakerState.CLOSED
        await fail_times(client, 1)
        assert state(health) is BreakerState.OPEN
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get("/items", extensions=ext())

    assert script.count == 3
    error = caught.value
    assert error.source == SOURCE
    assert error.retry_after is not None
    assert 25.0 <= error.retry_after <= 30.0  # seconds until it half-opens
    assert error.extensions["code"] == "UPSTREAM_UNAVAILABLE"
    assert health.report()["breaker"] == "open"


async def test_breaker_below_threshold_stays_closed() -> None:
    script = Script(503, 503, 200)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 2)
        response = await client.get("/items", extensions=ext())

    assert (script.count, response.status_code) == (3, 200)
    assert state(health) is BreakerState.CLOSED


async def test_breaker_success_resets_the_failure_count() -> None:
    script = Script(503, 503, 200, 503, 503, 200)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 2)
        await client.get("/items", extensions=ext())
        assert health.failures == 0
        await fail_times(client, 2)
        assert state(health) is BreakerState.CLOSED
        response = await client.get("/items", extensions=ext())

    assert (script.count, response.status_code) == (6, 200)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429])
async def test_breaker_does_not_count_4xx_or_429(status: int) -> None:
    script = Script(status)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        for _ in range(5):
            assert (await client.get("/items", extensions=ext())).status_code == status

    assert script.count == 5
    assert state(health) is BreakerState.CLOSED
    assert health.failures == 0


async def test_breaker_half_open_lets_one_probe_through_and_its_success_closes() -> None:
    script = Script(503, 503, 503, 200)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 3)
        await asyncio.sleep(0.12)
        assert state(health) is BreakerState.HALF_OPEN
        script.gate = asyncio.Event()
        probe = asyncio.ensure_future(client.get("/items", extensions=ext()))
        await until(lambda: script.count == 4)
        # Refused at once: a call waiting for the held probe would time out here instead.
        with pytest.raises(UpstreamUnavailable) as caught:
            await asyncio.wait_for(client.get("/items", extensions=ext()), 5.0)
        assert caught.value.source == SOURCE
        assert script.count == 4
        script.gate.set()
        assert (await probe).status_code == 200
        assert state(health) is BreakerState.CLOSED
        after = await client.get("/items", extensions=ext())

    assert after.status_code == 200
    assert script.count == 5


async def test_breaker_probe_failure_opens_again() -> None:
    script = Script(503)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 3)
        await asyncio.sleep(0.12)
        probe = await client.get("/items", extensions=ext())
        assert probe.status_code == 503
        assert state(health) is BreakerState.OPEN
        with pytest.raises(UpstreamUnavailable):
            await client.get("/items", extensions=ext())

    assert script.count == 4


async def test_breaker_cancelled_probe_lets_another_probe_through() -> None:
    script = Script(503, 503, 503, 200)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 3)
        await asyncio.sleep(0.12)
        script.gate = asyncio.Event()
        probe = asyncio.ensure_future(client.get("/items", extensions=ext()))
        await until(lambda: script.count == 4)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        script.gate.set()
        response = await client.get("/items", extensions=ext())

    assert response.status_code == 200
    assert state(health) is BreakerState.CLOSED


async def test_breaker_report_says_what_happened() -> None:
    script = Script(200, 503, httpx.ConnectError, httpx.ReadTimeout)
    transport, health = guarded(script)
    assert health.report() == {"breaker": "closed", "consecutiveFailures": 0,
                               "lastSuccess": None, "lastError": None, "lastErrorAt": None}
    async with client_over(transport) as client:
        await client.get("/items", extensions=ext())
        report = health.report()
        assert isinstance(report["lastSuccess"], str) and ISO.match(report["lastSuccess"])
        assert abs(utc_seconds(report["lastSuccess"]) - time.time()) < 5
        assert report["lastError"] is None

        errors = []
        for _ in range(3):
            await fail_times(client, 1)
            errors.append(health.report()["lastError"])
        report = health.report()
        await asyncio.sleep(0.12)
        later = health.report()

    assert errors == ["HTTP 503", "ConnectError", "timeout"]
    assert report["breaker"] == "open"
    assert report["consecutiveFailures"] == 3
    assert isinstance(report["lastErrorAt"], str) and ISO.match(report["lastErrorAt"])
    assert abs(utc_seconds(report["lastErrorAt"]) - time.time()) < 5
    assert report["lastSuccess"] is not None
    assert later["breaker"] == "half-open"
