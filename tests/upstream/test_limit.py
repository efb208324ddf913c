"""ConcurrencyLimitTransport over a scripted upstream: at most ``limit`` calls in flight."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.upstream.limit import ConcurrencyLimitTransport
from tests.upstream.scripted import Script, at_once, client_over, ext, settle, until


async def test_limit_keeps_at_most_limit_calls_in_flight() -> None:
    script = Script(200)
    script.gate = asyncio.Event()
    transport = ConcurrencyLimitTransport(httpx.MockTransport(script), limit=2)
    async with client_over(transport) as client:
        tasks = [asyncio.ensure_future(client.get(f"/items?n={n}", extensions=ext()))
                 for n in range(5)]
        await until(lambda: script.count == 2)
        await settle()  # give a third call the chance to start, if it could
        assert (script.count, script.in_flight) == (2, 2)
        script.gate.set()
        responses = await asyncio.gather(*tasks)

    assert script.count == 5
    assert script.most_in_flight == 2
    assert all(r.status_code == 200 for r in responses)


async def test_limit_frees_the_slot_of_a_failed_call() -> None:
    script = Script(httpx.ConnectError, httpx.ConnectError, 200)
    transport = ConcurrencyLimitTransport(httpx.MockTransport(script), limit=1)
    async with client_over(transport) as client:
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                await client.get("/items", extensions=ext())
        # At once: a slot still held by a failed call would keep this one waiting.
        response = await at_once(client.get("/items", extensions=ext()))

    assert response.status_code == 200
