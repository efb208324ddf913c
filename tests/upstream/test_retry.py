"""RetryTransport over a scripted upstream: what is retried, how long it waits, deadlines.

The layer sleeps and reads deadlines through a :class:`~tests.clock.ManualClock`: its waits are
read from ``manual.slept`` and cost no real time.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import httpx
import pytest

from gateway.upstream.retry import RetryPolicy, RetryTransport
from tests.clock import ManualClock
from tests.upstream.scripted import BASE, Script, call_of, client_over, ext

POLICY = RetryPolicy(max_retries=2, backoff=0.2, max_backoff=5.0, retry_after_cap=10.0)


def retrying(script: Script, manual: ManualClock, policy: RetryPolicy = POLICY
             ) -> RetryTransport:
    return RetryTransport(httpx.MockTransport(script), policy=policy, rng=random.Random(0),
                          clock=manual.clock)


def backoffs(manual: ManualClock) -> None:
    """What the layer slept were full-jitter backoffs: the n-th within [0, 0.2 s * 2^n]."""
    assert all(0 <= wait <= POLICY.backoff * 2 ** n for n, wait in enumerate(manual.slept))


def retry_after(status: int, seconds: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, headers={"retry-after": seconds}, json={"call": 0})


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_retry_gives_up_after_max_retries_with_the_last_response(
    status: int, manual: ManualClock
) -> None:
    script = Script(status)
    async with client_over(retrying(script, manual)) as client:
        response = await client.get("/items", extensions=ext(clock=manual.clock))

    assert script.count == 3
    assert (response.status_code, call_of(response)) == (status, 3)
    assert len(manual.slept) == 2  # a backoff before each retry, none after the last try
    backoffs(manual)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_retry_recovers_when_a_later_try_succeeds(status: int, manual: ManualClock
                                                        ) -> None:
    script = Script(status, status, 200)
    async with client_over(retrying(script, manual)) as client:
        response = await client.get("/items", extensions=ext(clock=manual.clock))

    assert script.count == 3
    assert (response.status_code, call_of(response)) == (200, 3)
    assert len(manual.slept) == 2
    backoffs(manual)


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
     httpx.WriteError],
)
async def test_retry_retries_connection_failures_then_raises(
    error: type[Exception], manual: ManualClock
) -> None:
    script = Script(error)
    async with client_over(retrying(script, manual)) as client:
        with pytest.raises(error):
            await client.get("/items", extensions=ext(clock=manual.clock))

    assert script.count == 3
    assert len(manual.slept) == 2
    backoffs(manual)


async def test_retry_after_a_connect_error_can_succeed(manual: ManualClock) -> None:
    script = Script(httpx.ConnectError, 200)
    async with client_over(retrying(script, manual)) as client:
        response = await client.get("/items", extensions=ext(clock=manual.clock))

    assert (script.count, call_of(response)) == (2, 2)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 500, 501])
async def test_retry_does_not_retry_other_statuses(status: int, manual: ManualClock) -> None:
    script = Script(status)
    async with client_over(retrying(script, manual)) as client:
        response = await client.get("/items", extensions=ext(clock=manual.clock))

    assert script.count == 1
    assert response.status_code == status
    assert manual.slept == []


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout])
async def test_retry_does_not_retry_a_timeout_after_connecting(
    error: type[Exception], manual: ManualClock
) -> None:
    script = Script(error)
    async with client_over(retrying(script, manual)) as client:
        with pytest.raises(error):
            await client.get("/items", extensions=ext(clock=manual.clock))

    assert script.count == 1
    assert manual.slept == []


async def test_retry_does_not_retry_other_methods(manual: ManualClock) -> None:
    script = Script(503)
    async with client_over(retrying(script, manual)) as client:
        response = await client.post("/items", json={}, extensions=ext(clock=manual.clock))

    assert (script.count, response.status_code) == (1, 503)


async def test_retry_with_no_retries_allowed_makes_one_try(manual: ManualClock) -> None:
    script = Script(503)
    async with client_over(retrying(script, manual, RetryPolicy(max_retries=0))) as client:
        await client.get("/items", extensions=ext(clock=manual.clock))

    assert script.count == 1
    assert manual.slept == []


async def test_retry_honours_retry_after(manual: ManualClock) -> None:
    script = Script(retry_after(503, "1"), 200)
    async with client_over(retrying(script, manual)) as client:
        response = await client.get("/items", extensions=ext(deadline=5.0, clock=manual.clock))

    assert (script.count, response.status_code) == (2, 200)
    assert manual.slept == [1.0]  # what the upstream asked, not the backoff


async def test_retry_caps_retry_after(manual: ManualClock) -> None:
    script = Script(retry_after(429, "100"), 200)
    async with client_over(retrying(script, manual)) as client:
        response = await client.get("/items", extensions=ext(deadline=30.0, clock=manual.clock))

    assert (script.count, response.status_code) == (2, 200)
    assert manual.slept == [POLICY.retry_after_cap]  # 10 s, not the 100 s asked


async def test_retry_after_as_a_date_falls_back_to_the_backoff(manual: ManualClock) -> None:
    script = Script(retry_after(503, "Wed, 21 Oct 2099 07:28:00 GMT"), 200)
    async with client_over(retrying(script, manual)) as client:
        response = await client.get("/items", extensions=ext(deadline=30.0, clock=manual.clock))

    assert (script.count, response.status_code) == (2, 200)
    assert len(manual.slept) == 1  # the backoff, not the 10 s cap of an unread date
    backoffs(manual)


async def test_retry_never_waits_past_the_deadline(manual: ManualClock) -> None:
    script = Script(retry_after(503, "8"), 200)
    async with client_over(retrying(script, manual)) as client:
        response = await client.get("/items", extensions=ext(deadline=5.0, clock=manual.clock))

    assert (script.count, response.status_code) == (1, 503)
    assert manual.slept == []  # answered at once: neither the 8 s asked nor until the deadline


async def test_retry_raises_at_once_when_the_backoff_would_pass_the_deadline(
    manual: ManualClock,
) -> None:
    policy = RetryPolicy(max_retries=2, backoff=10.0, max_backoff=10.0)
    script = Script(httpx.ConnectError, 200)
    # rng=Random(0) draws 0.84 of the first backoff (8.4 s): more than the 5 s left.
    async with client_over(retrying(script, manual, policy)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/items", extensions=ext(deadline=5.0, clock=manual.clock))

    assert script.count == 1
    assert manual.slept == []  # at once, not at the deadline


async def test_retry_cuts_each_try_timeout_to_the_time_left(manual: ManualClock) -> None:
    script = Script(retry_after(503, "1"), 200)
    async with client_over(retrying(script, manual)) as client:
        await client.get("/items", extensions=ext(deadline=3.0, clock=manual.clock))

    first, second = script.timeouts
    names = {"connect", "read", "write", "pool"}
    assert first == dict.fromkeys(names, 3.0)  # the deadline, not httpx's default 5 s
    assert second == dict.fromkeys(names, 2.0)  # what is left after the 1 s wait


async def test_retry_keeps_a_shorter_timeout_and_leaves_it_alone_without_a_deadline(
    manual: ManualClock,
) -> None:
    script = Script(200)
    transport = retrying(script, manual)
    async with httpx.AsyncClient(transport=transport, base_url=BASE,
                                 timeout=httpx.Timeout(0.1, connect=0.05)) as client:
        await client.get("/items", extensions=ext(deadline=10.0, clock=manual.clock))
        await client.get("/items", extensions=ext(deadline=None))

    cut, untouched = script.timeouts
    assert cut == {"connect": 0.05, "read": 0.1, "write": 0.1, "pool": 0.1}
    assert untouched == {"connect": 0.05, "read": 0.1, "write": 0.1, "pool": 0.1}
