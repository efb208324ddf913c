"""gateway.shared.gather: asyncio.gather's answers, with no task for a lone awaitable."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from gateway.shared import gather


async def answer(value: Any) -> Any:
    if isinstance(value, Exception):
        raise value
    await asyncio.sleep(0)
    return value


@pytest.mark.parametrize("values", [[], [1], [1, 2, 3], [ValueError("no")],
                                    [1, ValueError("no"), 3]])
async def test_gather_answers_as_asyncio_gather(values: list[Any]) -> None:
    ours = await gather(*(answer(v) for v in values), return_exceptions=True)
    theirs = await asyncio.gather(*(answer(v) for v in values), return_exceptions=True)
    assert [repr(a) for a in ours] == [repr(a) for a in theirs]
    if any(isinstance(v, Exception) for v in values):
        with pytest.raises(ValueError, match="no"):
            await gather(*(answer(v) for v in values))


async def test_a_lone_awaitable_runs_in_the_callers_task() -> None:
    async def whose() -> asyncio.Task[Any] | None:
        return asyncio.current_task()

    assert await gather(whose()) == [asyncio.current_task()]
    [other, _] = await gather(whose(), whose())
    assert other is not asyncio.current_task()


async def test_cancelling_the_caller_cancels_a_lone_awaitable() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def waits() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    caller = asyncio.create_task(gather(waits(), return_exceptions=True))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert cancelled.is_set()


async def test_a_failure_cancels_the_work_still_running_and_none_is_logged_unread(
        caplog: pytest.LogCaptureFixture) -> None:
    stopped: list[str] = []

    async def slow() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.append("slow")
            raise
        return "never"

    async def fails_later() -> str:
        await asyncio.sleep(0)
        raise KeyError("later")

    first = asyncio.ensure_future(fails_later())
    with pytest.raises(ValueError, match="no"):
        await gather(answer(ValueError("no")), slow(), first)
    await asyncio.sleep(0.01)
    assert stopped == ["slow"]  # its result could not be used: it stopped
    assert first.done()
    del first
    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_cancelling_the_caller_cancels_every_awaitable() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def waits(n: int) -> None:
        started.append(n)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise

    caller = asyncio.create_task(gather(waits(1), waits(2), waits(3), return_exceptions=True))
    while len(started) < 3:
        await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.sleep(0)
    assert sorted(cancelled) == [1, 2, 3]


async def test_an_awaitable_cancelled_on_its_own_is_a_result_with_return_exceptions() -> None:
    async def waits() -> None:
        await asyncio.sleep(60)

    other = asyncio.ensure_future(waits())
    asyncio.get_running_loop().call_soon(other.cancel)
    results = await gather(answer(1), other, return_exceptions=True)
    assert results[0] == 1 and isinstance(results[1], asyncio.CancelledError)
    theirs = asyncio.ensure_future(waits())
    asyncio.get_running_loop().call_soon(theirs.cancel)
    reference = await asyncio.gather(answer(1), theirs, return_exceptions=True)
    assert type(reference[1]) is type(results[1])
