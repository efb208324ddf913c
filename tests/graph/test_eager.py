"""The eager start on its own: a coroutine that ends at once gives its value with no task; one
that waits goes on in a task, in the context it started in; coroutines waiting for one future
(one loader key) all get its value; cancelling reaches a coroutine whether or not its task has
begun."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from gateway.graph.eager import EagerStarts

NOTE: contextvars.ContextVar[str] = contextvars.ContextVar("note", default="unset")


async def answers(value: Any) -> Any:
    return value


async def raises() -> Any:
    raise ValueError("failed at once")


async def waits_for(future: asyncio.Future[Any]) -> Any:
    NOTE.set("set before waiting")
    value = await future
    return value, NOTE.get()


async def test_a_coroutine_that_ends_at_once_gives_its_value_without_a_task() -> None:
    starts = EagerStarts()
    tasks = len(asyncio.all_tasks())

    assert starts.start(answers(7)) == (True, 7)
    ended, error = starts.start(raises())
    assert ended and isinstance(error, ValueError) and str(error) == "failed at once"
    assert len(asyncio.all_tasks()) == tasks and not starts.continued


async def test_one_that_waits_goes_on_in_a_task_in_the_context_it_started_in() -> None:
    future = asyncio.get_running_loop().create_future()
    ended, task = EagerStarts().start(waits_for(future))

    assert not ended and isinstance(task, asyncio.Task)
    assert NOTE.get() == "unset"  # the caller's context: the coroutine set the note in a copy
    future.set_result("value")
    assert await task == ("value", "set before waiting")


async def test_coroutines_waiting_for_one_future_all_get_its_value() -> None:
    future = asyncio.get_running_loop().create_future()
    starts = EagerStarts()
    started = [starts.start(waits_for(future)) for _ in range(3)]
    awaited = asyncio.ensure_future(waits_for(future))  # and a task of its own, meanwhile
    await asyncio.sleep(0)

    future.set_result(1)

    assert [ended for ended, _ in started] == [False, False, False]
    assert await asyncio.gather(*(task for _, task in started), awaited) == [
        (1, "set before waiting")] * 4


@pytest.mark.parametrize("task_began", [False, True], ids=["before-its-task", "in-its-task"])
async def test_cancelling_reaches_the_coroutine(task_began: bool) -> None:
    future = asyncio.get_running_loop().create_future()
    cleaned: list[str] = []

    async def holds() -> None:
        try:
            await future
        finally:
            cleaned.append("cleaned")

    starts = EagerStarts()
    ended, task = starts.start(holds())
    assert not ended
    if task_began:
        await asyncio.sleep(0)

    starts.cancel(task)

    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["cleaned"]
