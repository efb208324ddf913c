"""ConcurrencyLimitTransport over a scripted upstream: at most ``limit`` calls in flight, a
bounded queue, waits that end at the request's deadline, and the breaker asked again."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.errors import UpstreamTimeout, UpstreamUnavailable
from gateway.upstream.breaker import BreakerPolicy, BreakerState, SourceHealth
from gateway.upstream.limit import ConcurrencyLimitTransport
from tests.clock import ManualClock
from tests.upstream.scripted import SOURCE, Script, at_once, client_over, ext, settle, state, until


def limited(script: Script, manual: ManualClock, *, limit: int, max_queue: int = 100,
            health: SourceHealth | None = None) -> ConcurrencyLimitTransport:
    health = health or SourceHealth(SOURCE, BreakerPolicy(), clock=manual.clock)
    return ConcurrencyLimitTransport(httpx.MockTransport(script), limit=limit,
                                     max_queue=max_queue, health=health, clock=manual.clock)


def held() -> Script:
    script = Script(200)
    script.gate = asyncio.Event()
    return script


def started(client: httpx.AsyncClient, manual: ManualClock, n: int = 0,
            deadline: float = 60.0) -> asyncio.Future[httpx.Response]:
    """A GET on its way; the deadline is read on the manual clock, but waiting for a slot
    until it uses a real timer: a minute is far beyond what a test waits."""
    return asyncio.ensure_future(
        client.get(f"/items?n={n}", extensions=ext(deadline=deadline, clock=manual.clock)))


async def test_limit_keeps_at_most_limit_calls_in_flight(manual: ManualClock) -> None:
    script = held()
    async with client_over(limited(script, manual, limit=2)) as client:
        tasks = [started(client, manual, n) for n in range(5)]
        await until(lambda: script.count == 2)
        await settle()  # give a third call the chance to start, if it could
        assert (script.count, script.in_flight) == (2, 2)
        assert script.gate is not None
        script.gate.set()
        responses = await asyncio.gather(*tasks)

    assert script.count == 5
    assert script.most_in_flight == 2
    assert all(r.status_code == 200 for r in responses)


async def test_limit_frees_the_slot_of_a_failed_call(manual: ManualClock) -> None:
    script = Script(httpx.ConnectError, httpx.ConnectError, 200)
    async with client_over(limited(script, manual, limit=1)) as client:
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                await client.get("/items", extensions=ext(clock=manual.clock))
        # At once: a slot still held by a failed call would keep this one waiting.
        response = await at_once(client.get("/items", extensions=ext(clock=manual.clock)))

    assert response.status_code == 200


async def test_a_full_queue_fails_a_request_at_once_and_retryable(manual: ManualClock) -> None:
    script = held()
    async with client_over(limited(script, manual, limit=1, max_queue=2)) as client:
        tasks = [started(client, manual, n) for n in range(3)]  # one in flight, two queued
        await until(lambda: script.count == 1)
        await settle()
        with pytest.raises(UpstreamUnavailable) as refused:
            await at_once(client.get("/items?n=9", extensions=ext(clock=manual.clock)))
        assert script.gate is not None
        script.gate.set()
        responses = await asyncio.gather(*tasks)

    assert refused.value.extensions == {"code": "UPSTREAM_UNAVAILABLE", "source": SOURCE,
                                        "retryable": True, "retryAfter": 1.0}
    assert "too many requests waiting" in refused.value.message
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert script.count == 3  # the refused one never reached the upstream


async def test_a_wait_for_a_slot_ends_at_the_request_deadline(manual: ManualClock) -> None:
    script = held()
    async with client_over(limited(script, manual, limit=1)) as client:
        holder = started(client, manual)
        await until(lambda: script.count == 1)
        hurried = ext(deadline=1.0, clock=manual.clock)
        manual.advance(2.0)  # its deadline has passed, by the layer's clock
        with pytest.raises(UpstreamTimeout) as late:
            await at_once(client.get("/items?n=1", extensions=hurried))
        assert script.gate is not None
        script.gate.set()
        await holder

    assert script.count == 1  # the late one was never sent
    assert "deadline passed while it waited" in late.value.message
    assert late.value.source == SOURCE


async def test_the_breaker_is_asked_again_once_a_request_has_its_slot(
        manual: ManualClock) -> None:
    health = SourceHealth(SOURCE, BreakerPolicy(threshold=1), clock=manual.clock)
    script = held()
    async with client_over(limited(script, manual, limit=1, health=health)) as client:
        holder = started(client, manual)
        await until(lambda: script.count == 1)
        waiter = started(client, manual, 1)  # admitted by a closed breaker; waits for the slot
        await settle()
        health.failed("HTTP 503")  # another request's failure opens the breaker meanwhile
        assert state(health) is BreakerState.OPEN
        assert script.gate is not None
        script.gate.set()
        await holder
        with pytest.raises(UpstreamUnavailable, match="stopped calling it"):
            await at_once(waiter)

    assert script.count == 1  # the waiter was not sent to a source the breaker shut off
