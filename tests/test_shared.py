"""gateway.shared.gather: asyncio.gather's answers, with no task for a lone awaitable."""

from __future__ import annotations

import asyncio
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
