"""DedupTransport over a scripted upstream: concurrent identical GETs share one call."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.upstream.dedup import DedupTransport
from tests.upstream.scripted import SOURCE, Script, call_of, client_over, ext


def deduped(script: Script, credential: str = "cred-a") -> DedupTransport:
    return DedupTransport(httpx.MockTransport(script), source=SOURCE, credential=credential)


async def test_dedup_makes_concurrent_identical_gets_one_call() -> None:
    script = Script(200, delay=0.03)
    async with client_over(deduped(script)) as client:
        responses = await asyncio.gather(
            *(client.get("/items?a=1&b=2", extensions=ext()) for _ in range(20)))
        later = await client.get("/items?a=1&b=2", extensions=ext())

    assert script.count == 2  # the 20 shared one call; the later one is not in flight with them
    assert all(r.status_code == 200 and r.json() == {"call": 1} for r in responses)
    assert call_of(later) == 2
    assert len({id(r) for r in responses}) == 20  # a response each


async def test_dedup_keeps_different_calls_apart() -> None:
    script = Script(200, delay=0.03)
    async with client_over(deduped(script)) as client:
        responses = await asyncio.gather(
            client.get("/items?a=1", extensions=ext()),
            client.get("/items?a=2", extensions=ext()),
            client.get("/other?a=1", extensions=ext()),
            client.get("/items?a=1", extensions=ext(language="en")),
            client.get("/items?a=1", extensions=ext()),
        )

    assert script.count == 4
    calls = [call_of(r) for r in responses]
    assert len(set(calls[:4])) == 4
    assert calls[4] == calls[0]


async def test_dedup_shares_an_error_with_every_waiter() -> None:
    script = Script(httpx.ConnectError, delay=0.02)
    async with client_over(deduped(script)) as client:
        results = await asyncio.gather(
            *(client.get("/items", extensions=ext()) for _ in range(5)), return_exceptions=True)

    assert script.count == 1
    assert all(isinstance(r, httpx.ConnectError) for r in results)


@pytest.mark.parametrize("short_first", [False, True], ids=["waiter-short", "owner-short"])
async def test_dedup_waiter_past_its_deadline_gives_up_without_cancelling_the_call(
    short_first: bool,
) -> None:
    script = Script(200)
    script.gate = asyncio.Event()  # the shared call answers when the test releases it
    async with client_over(deduped(script)) as client:
        patient_ext, hurried_ext = ext(deadline=5.0), ext(deadline=0.03)
        if short_first:
            hurried = asyncio.ensure_future(client.get("/items", extensions=hurried_ext))
            await asyncio.sleep(0)
            patient = asyncio.ensure_future(client.get("/items", extensions=patient_ext))
        else:
            patient = asyncio.ensure_future(client.get("/items", extensions=patient_ext))
            await asyncio.sleep(0)
            hurried = asyncio.ensure_future(client.get("/items", extensions=hurried_ext))
        # Gives up while the call is held: waiting for it would time out here instead.
        with pytest.raises(httpx.ReadTimeout):
            await asyncio.wait_for(hurried, 5.0)
        assert not patient.done()
        script.gate.set()
        response = await patient

    assert script.count == 1
    assert response.json() == {"call": 1}
