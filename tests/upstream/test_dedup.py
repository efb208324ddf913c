"""DedupTransport over a scripted upstream: concurrent identical GETs share one call.

The shared call is held by the script's gate until every caller has joined (event-loop turns,
not a scripted delay); waiters' deadlines are read from a :class:`~tests.clock.ManualClock`.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.upstream.dedup import DedupTransport
from tests.clock import ManualClock
from tests.upstream.scripted import SOURCE, Script, at_once, call_of, client_over, ext, settle


def deduped(script: Script, manual: ManualClock, credential: str = "cred-a") -> DedupTransport:
    return DedupTransport(httpx.MockTransport(script), source=SOURCE, credential=credential,
                          clock=manual.clock)


def started(client: httpx.AsyncClient, manual: ManualClock, path: str = "/items",
            language: str = "cs") -> asyncio.Future[httpx.Response]:
    """A GET on its way, its deadline a minute from now by the layer's clock.

    The layer waits for a shared call at most until the deadline, on a real timer: a minute is
    far beyond the few event-loop turns before the test releases the call.
    """
    return asyncio.ensure_future(
        client.get(path, extensions=ext(deadline=60.0, language=language, clock=manual.clock)))


def held(*answers: int | type[Exception]) -> Script:
    """A script whose calls wait until the test sets ``script.gate``."""
    script = Script(*answers)
    script.gate = asyncio.Event()
    return script


async def test_dedup_makes_concurrent_identical_gets_one_call(manual: ManualClock) -> None:
    script = held(200)
    async with client_over(deduped(script, manual)) as client:
        tasks = [started(client, manual, "/items?a=1&b=2") for _ in range(20)]
        await settle()  # all 20 have joined the held call
        assert script.count == 1
        assert script.gate is not None
        script.gate.set()
        responses = await asyncio.gather(*tasks)
        later = await client.get("/items?a=1&b=2", extensions=ext(clock=manual.clock))

    assert script.count == 2  # the 20 shared one call; the later one is not in flight with them
    assert all(r.status_code == 200 and r.json() == {"call": 1} for r in responses)
    assert call_of(later) == 2
    assert len({id(r) for r in responses}) == 20  # a response each


async def test_dedup_keeps_different_calls_apart(manual: ManualClock) -> None:
    script = held(200)
    async with client_over(deduped(script, manual)) as client:
        tasks = [started(client, manual, "/items?a=1"), started(client, manual, "/items?a=2"),
                 started(client, manual, "/other?a=1"),
                 started(client, manual, "/items?a=1", language="en"),
                 started(client, manual, "/items?a=1")]
        await settle()  # all five are in flight together
        assert script.count == 4
        assert script.gate is not None
        script.gate.set()
        responses = await asyncio.gather(*tasks)

    assert script.count == 4
    numbers = [call_of(r) for r in responses]
    assert len(set(numbers[:4])) == 4
    assert numbers[4] == numbers[0]


async def test_dedup_shares_an_error_with_every_waiter(manual: ManualClock) -> None:
    script = held(httpx.ConnectError)
    async with client_over(deduped(script, manual)) as client:
        tasks = [started(client, manual) for _ in range(5)]
        await settle()
        assert script.gate is not None
        script.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)

    assert script.count == 1
    assert all(isinstance(r, httpx.ConnectError) for r in results)


@pytest.mark.parametrize("short_first", [False, True], ids=["waiter-short", "owner-short"])
async def test_dedup_waiter_past_its_deadline_gives_up_without_cancelling_the_call(
    short_first: bool, manual: ManualClock
) -> None:
    script = held(200)  # the shared call answers when the test releases it
    async with client_over(deduped(script, manual)) as client:
        patient_ext = ext(deadline=60.0, clock=manual.clock)
        hurried_ext = ext(deadline=1.0, clock=manual.clock)
        manual.advance(2.0)  # the hurried caller's deadline has passed; the patient's has not
        if short_first:
            # The hurried caller starts the call; the patient one joins it before the hurried
            # one notices its deadline (a call nobody waits for any more would be cancelled).
            hurried = asyncio.ensure_future(client.get("/items", extensions=hurried_ext))
            patient = asyncio.ensure_future(client.get("/items", extensions=patient_ext))
        else:
            patient = asyncio.ensure_future(client.get("/items", extensions=patient_ext))
            await settle()
            hurried = asyncio.ensure_future(client.get("/items", extensions=hurried_ext))
        # Gives up while the call is held: waiting for it would not finish here.
        with pytest.raises(httpx.ReadTimeout):
            await at_once(hurried)
        await settle()
        assert not patient.done()
        assert script.gate is not None
        script.gate.set()
        response = await patient

    assert script.count == 1
    assert response.json() == {"call": 1}


async def test_dedup_cancels_the_shared_call_when_its_last_waiter_leaves(
    manual: ManualClock,
) -> None:
    script = held(200)
    async with client_over(deduped(script, manual)) as client:
        first, second = started(client, manual), started(client, manual)
        await settle()
        assert (script.count, script.in_flight) == (1, 1)
        first.cancel()  # its client left: the other caller still waits
        await settle()
        assert script.in_flight == 1 and not second.done()
        second.cancel()  # the last one: nobody waits for the call any more
        await settle()
        assert script.in_flight == 0  # the upstream call itself was cancelled
        assert script.gate is not None
        script.gate.set()
        later = await at_once(client.get("/items", extensions=ext(clock=manual.clock)))

    assert first.cancelled() and second.cancelled()
    assert call_of(later) == 2  # a fresh call: the cancelled one was forgotten


async def test_dedup_cancels_a_call_whose_only_waiter_is_past_its_deadline(
    manual: ManualClock,
) -> None:
    script = held(200)
    async with client_over(deduped(script, manual)) as client:
        hurried = ext(deadline=1.0, clock=manual.clock)
        manual.advance(2.0)
        with pytest.raises(httpx.ReadTimeout):
            await at_once(client.get("/items", extensions=hurried))
        await settle()

    assert script.in_flight == 0 and script.count <= 1
