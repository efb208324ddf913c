"""A scripted upstream for the per-layer tests of ``gateway.upstream``.

Every layer is driven through a real ``httpx.AsyncClient`` whose transport is the layer, and
whose inner transport is an ``httpx.MockTransport`` over a :class:`Script` that counts calls.
Nothing here waits on real time: layers read a :class:`~tests.clock.ManualClock` the test moves,
a call is held by the script's ``gate`` until the test releases it, and "at once" means within a
bounded number of event-loop turns (:func:`until`), however busy the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.upstream.breaker import BreakerState, SourceHealth
from gateway.upstream.extensions import DEADLINE, FRESHNESS, LANGUAGE

__all__ = ["BASE", "SOURCE", "Answer", "Script", "at_once", "call_of", "client_over", "ext",
           "settle", "state", "until"]

T = TypeVar("T")

BASE = "http://upstream.test"
SOURCE = "src"

# One scripted answer: a status (JSON body {"call": n}), an exception class to raise, an
# exception instance to raise, or a function building the response.
Answer = int | type[Exception] | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """A scripted upstream: answers in order (the last one repeats) and records every call.

    ``gate``, when set, holds every call until the test releases it (``gate.set()``).
    """

    def __init__(self, *answers: Answer) -> None:
        self.answers: list[Answer] = list(answers) or [200]
        self.calls: list[httpx.Request] = []
        self.timeouts: list[dict[str, Any]] = []
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
    *, deadline: float | None = 2.0, freshness: str | None = "products",
    language: str | None = "cs", clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Request extensions; ``deadline`` is seconds from now by ``clock`` (the layer's clock)."""
    extensions: dict[str, Any] = {}
    if deadline is not None:
        extensions[DEADLINE] = clock.monotonic() + deadline
    if freshness is not None:
        extensions[FRESHNESS] = freshness
    if language is not None:
        extensions[LANGUAGE] = language
    return extensions


def call_of(response: httpx.Response) -> int:
    """Which scripted call produced this body."""
    number: int = response.json()["call"]
    return number


TURNS = 200  # event-loop turns; what the scripted layers do takes a handful, never a wait


async def settle(turns: int = TURNS) -> None:
    """Let every other task run as far as it can without waiting on anything."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], turns: int = TURNS) -> None:
    """Let other tasks run until ``condition`` holds; fail if it takes more than ``turns``."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition(), f"condition not reached within {turns} event-loop turns"


async def at_once(awaitable: Awaitable[T]) -> T:
    """The result of what must finish without waiting (on a held call, a timer or the clock)."""
    task = asyncio.ensure_future(awaitable)
    try:
        await until(task.done)
    finally:
        if not task.done():
            task.cancel()
    return task.result()


def state(health: SourceHealth) -> BreakerState:
    """The breaker's state now (a call, so that mypy does not narrow it between reads)."""
    return health.state
