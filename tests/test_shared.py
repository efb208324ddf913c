"""gateway.shared.gather: asyncio.gather's answers, with no task for a lone awaitable nor for a
coroutine that ends at its first step."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from typing import Any

import pytest

from gateway.shared import gather

NOTE: contextvars.ContextVar[str] = contextvars.ContextVar("note", default="unset")


async def answer(value: Any, *, wait: bool = True) -> Any:
    if wait:
        await asyncio.sleep(0)
    if isinstance(value, Exception):
        raise value
    return value


@pytest.mark.parametrize("wait", [True, False], ids=["waiting", "at-once"])
@pytest.mark.parametrize("values", [[], [1], [1, 2, 3], [ValueError("no")],
                                    [1, ValueError("no"), 3]])
async def test_gather_answers_as_asyncio_gather(values: list[Any], wait: bool) -> None:
    ours = await gather(*(answer(v, wait=wait) for v in values), return_exceptions=True)
    theirs = await asyncio.gather(*(answer(v, wait=wait) for v in values),
                                  return_exceptions=True)
    assert [repr(a) for a in ours] == [repr(a) for a in theirs]
    if any(isinstance(v, Exception) for v in values):
        with pytest.raises(ValueError, match="no"):
            await gather(*(answer(v, wait=wait) for v in values))


async def test_a_failure_at_the_first_step_cancels_what_was_started_before_it() -> None:
    cancelled: list[str] = []

    async def waits(name: str) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    later = waits("never started")
    with pytest.raises(ValueError, match="at once"):
        await gather(waits("started"), answer(ValueError("at once"), wait=False), later)
    await asyncio.sleep(0)  # the cancelled task's step
    assert cancelled == ["started"]
    assert inspect.getcoroutinestate(later) == "CORO_CLOSED"  # no "never awaited" warning


async def test_each_coroutine_runs_in_a_copy_of_the_callers_context() -> None:
    async def notes(value: str, *, wait: bool) -> str:
        NOTE.set(value)
        if wait:
            await asyncio.sleep(0)
        return NOTE.get()

    assert await gather(notes("a", wait=False), notes("b", wait=True)) == ["a", "b"]
    assert NOTE.get() == "unset"


async def test_only_a_coroutine_that_waits_gets_a_task() -> None:
    async def whose(*, wait: bool) -> asyncio.Task[Any] | None:
        if wait:
            await asyncio.sleep(0)
        return asyncio.current_task()

    caller = asyncio.current_task()
    assert await gather(whose(wait=True)) == [caller]  # a lone one is awaited as it is
    assert await gather(whose(wait=False), whose(wait=False)) == [caller, caller]
    waited, at_once = await gather(whose(wait=True), whose(wait=False))
    assert waited is not caller and at_once is caller


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


async def test_cancelling_the_caller_reaches_coroutines_whose_tasks_have_not_begun() -> None:
    # Both wait at their first step, so each goes on in a task; the caller is cancelled before
    # either task has stepped: each coroutine still sees the cancellation (its finally runs).
    unblocked: list[str] = []

    async def holds(name: str) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            unblocked.append(name)

    caller = asyncio.ensure_future(gather(holds("a"), holds("b")))
    await asyncio.sleep(0)  # the caller starts both, and waits
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert sorted(unblocked) == ["a", "b"]
