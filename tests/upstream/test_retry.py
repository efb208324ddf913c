"""RetryTransport over a scripted upstream: what is retried, how long it waits, deadlines."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import httpx
import pytest

from gateway.upstream.retry import RetryPolicy, RetryTransport
from tests.upstream.scripted import BASE, Script, call_of, client_over, ext

QUICK = RetryPolicy(max_retries=2, backoff=0.001, max_backoff=0.002, retry_after_cap=10.0)


def retrying(script: Script, policy: RetryPolicy = QUICK) -> RetryTransport:
    return RetryTransport(httpx.MockTransport(script), policy=policy, rng=random.Random(0))


def retry_after(status: int, seconds: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, headers={"retry-after": seconds}, json={"call": 0})


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_retry_gives_up_after_max_retries_with_the_last_response(status: int) -> None:
    script = Script(status)
    async with client_over(retrying(script)) as client:
        response = await client.get("/items", extensions=ext())

    assert script.count == 3
    assert (response.status_code, call_of(response)) == (status, 3)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_retry_recovers_when_a_later_try_succeeds(status: int) -> None:
    script = Script(status, status, 200)
    async with client_over(retrying(script)) as client:
        response = await client.get("/items", extensions=ext())

    assert script.count == 3
    assert (response.status_code, call_of(response)) == (200, 3)


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
     httpx.WriteError],
)
async def test_retry_retries_connection_failures_then_raises(error: type[Exception]) -> None:
    script = Script(error)
    async with client_over(retrying(script)) as client:
        with pytest.raises(error):
            await client.get("/items", extensions=ext())

    assert script.count == 3


async def test_retry_after_a_connect_error_can_succeed() -> None:
    script = Script(httpx.ConnectError, 200)
    async with client_over(retrying(script)) as client:
        response = await client.get("/items", extensions=ext())

    assert (script.count, call_of(response)) == (2, 2)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 500, 501])
async def test_retry_does_not_retry_other_statuses(status: int) -> None:
    script = Script(status)
    async with client_over(retrying(script)) as client:
        response = await client.get("/items", extensions=ext())

    assert script.count == 1
    assert response.status_code == status


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout])
async def test_retry_does_not_retry_a_timeout_after_connecting(error: type[Exception]) -> None:
    script = Script(error)
    async with client_over(retrying(script)) as client:
        with pytest.raises(error):
            await client.get("/items", extensions=ext())

    assert script.count == 1


async def test_retry_does_not_retry_other_methods() -> None:
    script = Script(503)
    async with client_over(retrying(script)) as client:
        response = await client.post("/items", json={}, extensions=ext())

    assert (script.count, response.status_code) == (1, 503)


async def test_retry_with_no_retries_allowed_makes_one_try() -> None:
    script = Script(503)
    async with client_over(retrying(script, RetryPolicy(max_retries=0, backoff=0.001))) as client:
        await client.get("/items", extensions=ext())

    assert script.count == 1


async def test_retry_honours_retry_after() -> None:
    script = Script(retry_after(503, "1"), 200)
    async with client_over(retrying(script)) as client:
        started = time.monotonic()
        response = await client.get("/items", extensions=ext(deadline=5.0))
        elapsed = time.monotonic() - started

    assert (script.count, response.status_code) == (2, 200)
    assert 1.0 <= elapsed < 3.0


async def test_retry_caps_retry_after() -> None:
    policy = RetryPolicy(max_retries=2, backoff=0.001, retry_after_cap=0.05)
    script = Script(retry_after(429, "100"), 200)
    async with client_over(retrying(script, policy)) as client:
        started = time.monotonic()
        response = await client.get("/items", extensions=ext(deadline=5.0))
        elapsed = time.monotonic() - started

    assert (script.count, response.status_code) == (2, 200)
    assert 0.05 <= elapsed < 5.0  # not the 100 s asked


async def test_retry_after_as_a_date_falls_back_to_the_backoff() -> None:
    script = Script(retry_after(503, "Wed, 21 Oct 2099 07:28:00 GMT"), 200)
    async with client_over(retrying(script)) as client:
        started = time.monotonic()
        response = await client.get("/items", extensions=ext(deadline=5.0))

    assert (script.count, response.status_code) == (2, 200)
    assert time.monotonic() - started < 5.0  # the 10 s cap would have passed the deadline


async def test_retry_never_waits_past_the_deadline() -> None:
    script = Script(retry_after(503, "8"), 200)
    async with client_over(retrying(script)) as client:
        started = time.monotonic()
        response = await client.get("/items", extensions=ext(deadline=5.0))
        elapsed = time.monotonic() - started

    assert (script.count, response.status_code) == (1, 503)
    assert elapsed < 2.5  # answered at once: neither the 8 s asked nor until the deadline


async def test_retry_raises_at_once_when_the_backoff_would_pass_the_deadline() -> None:
    policy = RetryPolicy(max_retries=2, backoff=10.0, max_backoff=10.0)
    script = Script(httpx.ConnectError, 200)
    # rng=Random(0) draws 0.84 of the first backoff (8.4 s): more than the 5 s left.
    async with client_over(retrying(script, policy)) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectError):
            await client.get("/items", extensions=ext(deadline=5.0))

    assert script.count == 1
    assert time.monotonic() - started < 2.5  # at once, not at the deadline


async def test_retry_cuts_each_try_timeout_to_the_time_left() -> None:
    script = Script(retry_after(503, "0.05"), 200)
    async with client_over(retrying(script)) as client:
        await client.get("/items", extensions=ext(deadline=0.5))

    first, second = script.timeouts
    assert set(first) == {"connect", "read", "write", "pool"}
    assert all(value <= 0.5 for value in first.values())  # the deadline, not the default 5 s
    assert all(0 < value <= first["read"] - 0.04 for value in second.values())


async def test_retry_keeps_a_shorter_timeout_and_leaves_it_alone_without_a_deadline() -> None:
    script = Script(200)
    transport = retrying(script)
    async with httpx.AsyncClient(transport=transport, base_url=BASE,
                                 timeout=httpx.Timeout(0.1, connect=0.05)) as client:
        await client.get("/items", extensions=ext(deadline=10.0))
        await client.get("/items", extensions=ext(deadline=None))

    cut, untouched = script.timeouts
    assert cut == {"connect": 0.05, "read": 0.1, "write": 0.1, "pool": 0.1}
    assert untouched == {"connect": 0.05, "read": 0.1, "write": 0.1, "pool": 0.1}
