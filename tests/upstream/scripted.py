"""A scripted upstream for the per-layer tests of ``gateway.upstream``.

Every layer is driven through a real ``httpx.AsyncClient`` whose transport is the layer, and
whose inner transport is an ``httpx.MockTransport`` over a :class:`Script` that counts calls.
Times are seconds; the scripted ones are short (milliseconds) so that the tests stay quick.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

import httpx

from gateway.upstream.breaker import BreakerState, SourceHealth
from gateway.upstream.extensions import DEADLINE, FRESHNESS, LANGUAGE

__all__ = ["BASE", "SOURCE", "Answer", "Script", "call_of", "client_over", "ext", "state",
           "until"]

BASE = "http://upstream.test"
SOURCE = "src"

# One scripted answer: a status (JSON body {"call": n}), an exception class to raise, an
# exception instance to raise, or a function building the response.
Answer = int | type[Exception] | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """A scripted upstream: answers in order (the last one repeats) and records every call.

    ``gate``, when set, holds every call until it is released.
    """

    def __init__(self, *answers: Answer, delay: float = 0.0) -> None:
        self.answers: list[Answer] = list(answers) or [200]
        self.calls: list[httpx.Request] = []
        self.timeouts: list[dict[str, Any]] = []
        self.delay = delay
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.most_in_flight = 0

    def then(self, *answers: Answer) -> None:
        """From the next call on, answer these instead."""
        self.answers = [*self.answers[: len(self.calls)], *answers]
        if len(self.answers) <= len(self.calls):  # the old script had run out
            self.answers = [*([200] * len(self.calls)), *answers]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        number = len(self.calls)
        self.timeouts.append(dict(request.extensions.get("timeout") or {}))
        answer = self.answers[min(number, len(self.answers)) - 1]
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.in_flight -= 1
        if isinstance(answer, int):
            return httpx.Response(answer, json={"call": number})
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, type):
            error = cast(type[Exception], answer)
            if issubclass(error, httpx.RequestError):
                raise error(f"scripted {error.__name__}", request=request)
            raise error(f"scripted {error.__name__}")
        return answer(request)

    @property
    def count(self) -> int:
        return len(self.calls)


def client_over(layer: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=layer, base_url=BASE)


def ext(
    *, deadline: float | None = 2.0, freshness: str | None = "products", language: str | None = "cs"
) -> dict[str, Any]:
    """Request extensions; ``deadline`` is seconds from now."""
    extensions: dict[str, Any] = {}
    if deadline is not None:
        extensions[DEADLINE] = time.monotonic() + deadline
    if freshness is not None:
        extensions[FRESHNESS] = freshness
    if language is not None:
        extensions[LANGUAGE] = language
    return extensions


def call_of(response: httpx.Response) -> int:
    """Which scripted call produced this body."""
    number: int = response.json()["call"]
    return number


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.002)


def state(health: SourceHealth) -> BreakerState:
    """The breaker's state now (a call, so that mypy does not narrow it between reads)."""
    return health.state
