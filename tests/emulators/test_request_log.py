"""The request log every emulator keeps: each answer's body size, in process and over HTTP.

The benchmark (``bench/report.py``) divides CPU by the upstream bytes a query costs, read from
``GET /_emulator/requests``: the size must be the body as sent, whatever shape the answer took
(an error, a tenant's re-encoded answer, a body sent in several chunks).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import httpx
from starlette.types import Message

from gateway.emulators.common import EmulatorMiddleware, FaultPlan, RequestLog
from tests.conftest import RunningEmulator

Emulator = Callable[[str], RunningEmulator]


def test_each_answers_size_is_logged_and_served(emulator: Emulator) -> None:
    running = emulator("carecloud")
    with running.client() as client:
        answers = [client.get("/product-groups", params={"count": 7}),
                   client.get("/product-groups/no-such-group")]
        served = client.get("/_emulator/requests").json()["requests"]
    assert [a.status_code for a in answers] == [200, 404]
    assert all(not a.headers.get("content-encoding") for a in answers)  # sizes as on the wire
    sizes = [len(a.content) for a in answers]
    assert all(size > 0 for size in sizes)
    assert [r.response_bytes for r in running.log.records] == sizes
    assert [r["response_bytes"] for r in served] == sizes
    assert {"method", "path", "query", "params", "headers", "started", "finished",
            "status"} <= set(served[0])  # the fields before it, unchanged


def test_a_tenants_answer_is_logged_at_the_size_it_was_sent(emulator: Emulator) -> None:
    running = emulator("joptic")
    running.tenants.add("other-token", "[a rather long marker for every name]")
    with running.client() as own, running.client(token="other-token") as other:
        plain = own.get("/product-groups", params={"limit": 5})
        marked = other.get("/product-groups", params={"limit": 5})
    assert len(marked.content) > len(plain.content)
    assert [r.response_bytes for r in running.log.records] == [len(plain.content),
                                                               len(marked.content)]


def test_a_body_sent_in_chunks_is_summed() -> None:
    async def chunked(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for chunk in (b"abc", b"", b"defgh"):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"ij"})

    log = RequestLog()
    middleware = EmulatorMiddleware(chunked, kind="comestri", log=log, faults=FaultPlan())
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/products", "query_string": b"",
             "headers": []}
    asyncio.run(middleware(scope, receive, send))
    assert len(sent) == 5
    assert [r.response_bytes for r in log.records] == [10]


def test_an_unanswered_request_is_logged_with_no_bytes(emulator: Emulator) -> None:
    running = emulator("axim")
    running.faults.set(hang=True)
    with running.client() as client, contextlib.suppress(httpx.TimeoutException):
        client.get("/productGroup/all", timeout=0.3)
    running.faults.clear()
    deadline = time.monotonic() + 5  # the record is written once the server sees the disconnect
    while len(running.log) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.response_bytes for r in running.log.records] == [0]
