"""BreakerTransport and SourceHealth over a scripted upstream: open, half-open, report.

The breaker reads a :class:`~tests.clock.ManualClock`: a probe falls due by ``advance(RESET + 1)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import datetime

import httpx
import pytest

from gateway.errors import UpstreamUnavailable
from gateway.upstream.breaker import BreakerPolicy, BreakerState, BreakerTransport, SourceHealth
from tests.clock import ManualClock
from tests.upstream.scripted import (
    SOURCE,
    Answer,
    Script,
    at_once,
    client_over,
    ext,
    state,
    until,
)

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def utc_seconds(iso: str) -> float:
    """The POSIX time of a report's ``2024-01-31T12:00:00Z``: the report's times are UTC."""
    return datetime.fromisoformat(iso).timestamp()


RESET = 30.0


def guarded(script: Script, manual: ManualClock, threshold: int = 3, reset: float = RESET
            ) -> tuple[BreakerTransport, SourceHealth]:
    health = SourceHealth(SOURCE, BreakerPolicy(threshold=threshold, reset=reset),
                          clock=manual.clock)
    return BreakerTransport(httpx.MockTransport(script), health=health), health


async def fail_times(client: httpx.AsyncClient, times: int) -> None:
    for _ in range(times):
        with contextlib.suppress(httpx.HTTPError):
            await client.get("/items", extensions=ext())



@pytest.mark.parametrize(
    "failure", [500, 502, 503, httpx.ConnectError, httpx.ReadTimeout, httpx.ConnectTimeout])
async def test_breaker_opens_after_threshold_consecutive_failures(
    failure: Answer, manual: ManualClock
) -> None:
    script = Script(failure)
    transport, health = guarded(script, manual)
    async with client_over(transport) as client:
        await fail_times(client, 2)
        assert state(health) is BreakerState.CLOSED
        await fail_times(client, 1)
        assert state(health) is BreakerState.OPEN
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get("/items", extensions=ext())
        manual.advance(12.0)
        with pytest.raises(UpstreamUnavailable) as later:
            await client.get("/items", extensions=ext())
        assert state(health) is BreakerState.OPEN

    assert script.count == 3
    error = caught.value
    assert error.source == SOURCE
    assert error.retry_after == 30.0  # seconds until it half-opens
    assert later.value.retry_after == 18.0
    assert error.extensions["code"] == "UPSTREAM_UNAVAILABLE"
    assert health.report()["breaker"] == "open"


async def test_breaker_below_threshold_stays_closed(manual: ManualClock) -> None:
    script = Script(503, 503, 200)
    transport, health = guarded(script, manual)
    async with client_over(transport) as client:
        await fail_times(client, 2)
        response = await client.get("/items", extensions=ext())

    assert (script.count, response.status_code) == (3, 200)
    assert state(health) is BreakerState.CLOSED


async def test_breaker_opens_on_a_failure_rate_not_on_a_few_failures_among_many(
        manual: ManualClock) -> None:
    # 3 failures among 8 calls (37 %): under the half the rule asks; the run is reset by
    # each success.
    script = Script(503, 200, 200, 503, 200, 200, 503, 200, 503, 503)
    transport, health = guarded(script, manual)
    async with client_over(transport) as client:
        for _ in range(8):
            with contextlib.suppress(httpx.HTTPError):
                await client.get("/items", extensions=ext())
        assert state(health) is BreakerState.CLOSED
        assert health.failures == 0
        await fail_times(client, 1)  # 4 of 9 calls failed: still under half
        assert state(health) is BreakerState.CLOSED
        await fail_times(client, 1)  # 5 of 10: half
        assert state(health) is BreakerState.OPEN
    assert script.count == 10


async def test_breaker_forgets_failures_older_than_its_window(manual: ManualClock) -> None:
    script = Script(503)
    transport, health = guarded(script, manual)
    async with client_over(transport) as client:
        await fail_times(client, 2)
        manual.advance(health.policy.window + 1)
        await fail_times(client, 2)  # 4 failures, but only 2 in the window
        assert state(health) is BreakerState.CLOSED
        await fail_times(client, 1)
        assert state(health) is BreakerState.OPEN


async def test_an_open_breaker_is_probed_only_while_asked_and_closes_on_the_first_answer(
        manual: ManualClock) -> None:
    """A source that hangs (each call times out) is called about once per reset while
    requests keep asking, never while none does; the first good answer closes it."""
    script = Script(httpx.ReadTimeout)
    transport, health = guarded(script, manual, reset=2.0)
    async with client_over(transport) as client:
        await fail_times(client, 3)
        assert state(health) is BreakerState.OPEN
        manual.advance(600)  # nobody asks for ten minutes: nothing is probed
        assert script.count == 3
        for _ in range(120):  # then a request every 0.5 s for a minute
            manual.advance(0.5)
            with contextlib.suppress(httpx.HTTPError, UpstreamUnavailable):
                await client.get("/items", extensions=ext())
        assert 3 + 60 / 2 - 1 <= script.count <= 3 + 60 / 2 + 1
        script.then(200)  # the source heals
        healed_at = manual.now
        response = None
        while response is None:  # a request every 0.5 s again
            manual.advance(0.5)
            with contextlib.suppress(UpstreamUnavailable):
                response = await client.get("/items", extensions=ext())
    assert response.status_code == 200 and manual.now - healed_at <= 2.0
    assert state(health) is BreakerState.CLOSED


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429])
async def test_breaker_does_not_count_4xx_or_429(status: int, manual: ManualClock) -> None:
    script = Script(status)
    transport, health = guarded(script, manual)
    async with client_over(transport) as client:
        for _ in range(5):
            assert (await client.get("/items", extensions=ext())).status_code == status

    assert script.count == 5
    assert state(health) is BreakerState.CLOSED
    assert health.failures == 0


async def test_breaker_half_open_lets_one_probe_through_and_its_success_closes(
    manual: ManualClock,
) -> None:
    script = Script(503, 503, 503, 200)
    transport, health = guarded(script, manual)
    async with client_over(transport) as client:
        await fail_times(client, 3)
        manual.advance(RESET - 1)
        assert state(health) is BreakerState.OPEN
        manual.advance(2)
        assert state(health) is BreakerState.HALF_OPEN
        script.gate = asyncio.Event()
        probe = asyncio.ensure_future(client.get("/items", extensions=ext()))
        await until(lambda: script.count == 4)
        # Refused at once: a call waiting for the held probe would not finish here.
        with pytest.raises(UpstreamUnavailable) as caught:
            await at_once(client.get("/items", extensions=ext()))
        assert caught.value.source == SOURCE
        assert script.count == 4
        script.gate.set()
        assert (await probe).status_code == 200
        assert state(health) is BreakerState.CLOSED
        after = await client.get("/items", extensions=ext())

    assert after.status_code == 200
    assert script.count == 5


async def test_breaker_probe_failure_opens_again(manual: ManualClock) -> None:
    script = Script(503)
    transport, health = guarded(script, manual)
    async with client_over(transport) as client:
        await fail_times(client, 3)
        manual.advance(RESET + 1)
        probe = await client.get("/items", extensions=ext())
        assert probe.status_code == 503
        assert state(health) is BreakerState.OPEN
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get("/items", extensions=ext())

    assert script.count == 4
    assert caught.value.retry_after == RESET  # a whole reset again, from the probe's failure


async def test_breaker_cancelled_probe_lets_another_probe_through(manual: ManualClock) -> None:
    script = Script(503, 503, 503, 200)
    transport, health = guarded(script, manual)
    async with client_over(transport) as client:
        await fail_times(client, 3)
        manual.advance(RESET + 1)
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


async def test_breaker_report_says_what_happened(manual: ManualClock) -> None:
    script = Script(200, 503, httpx.ConnectError, httpx.ReadTimeout)
    transport, health = guarded(script, manual)
    assert health.report() == {"breaker": "closed", "consecutiveFailures": 0,
                               "lastSuccess": None, "lastError": None, "lastErrorAt": None}
    async with client_over(transport) as client:
        succeeded_at = manual.now
        await client.get("/items", extensions=ext())
        report = health.report()
        assert isinstance(report["lastSuccess"], str) and ISO.match(report["lastSuccess"])
        assert utc_seconds(report["lastSuccess"]) == succeeded_at  # the clock's wall time
        assert report["lastError"] is None

        errors = []
        for _ in range(3):
            manual.advance(2.0)
            await fail_times(client, 1)
            errors.append(health.report()["lastError"])
        report = health.report()
        manual.advance(RESET + 1)
        later = health.report()

    assert errors == ["HTTP 503", "ConnectError", "timeout"]
    assert report["breaker"] == "open"
    assert report["consecutiveFailures"] == 3
    assert isinstance(report["lastErrorAt"], str) and ISO.match(report["lastErrorAt"])
    assert utc_seconds(report["lastErrorAt"]) == succeeded_at + 6.0  # the last failure's
    assert report["lastSuccess"] == later["lastSuccess"]  # failures leave it alone
    assert later["breaker"] == "half-open"
