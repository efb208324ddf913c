"""The per-request memo, and the entry-bounded dict of small per-process memos (the byte-bounded
LRU: tests/caches/test_bounded.py)."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from gateway.caches.bounded import BoundedDict
from gateway.scope import TaskMemo


async def test_task_memo_runs_once_per_key_for_concurrent_callers() -> None:
    memo: TaskMemo[str, int] = TaskMemo()
    runs: list[str] = []

    async def make(key: str) -> int:
        runs.append(key)
        run = len(runs)
        await asyncio.sleep(0)
        return run

    answers = await asyncio.gather(*(memo.once(k, partial(make, k)) for k in "aab"),
                                   memo.once("a", partial(make, "a")))
    assert answers == [1, 1, 2, 1]
    assert runs == ["a", "b"]
    assert await memo.once("a", partial(make, "late")) == 1
    assert len(memo) == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_task() -> None:
    memo: TaskMemo[str, str] = TaskMemo()
    release = asyncio.Event()

    async def make() -> str:
        await release.wait()
        return "done"

    first = asyncio.ensure_future(memo.once("k", make))
    second = asyncio.ensure_future(memo.once("k", make))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "done"
    assert first.cancelled()


async def test_the_last_caller_leaving_cancels_the_task_and_the_key_starts_afresh() -> None:
    memo: TaskMemo[str, str] = TaskMemo()
    started: list[int] = []
    stopped: list[int] = []

    async def make() -> str:
        started.append(len(started) + 1)
        try:
            await asyncio.Event().wait()  # never set: only a cancellation ends it
        finally:
            stopped.append(len(started))
        return "never"

    callers = [asyncio.ensure_future(memo.once("k", make)) for _ in range(2)]
    await asyncio.sleep(0)
    callers[0].cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert (started, stopped) == ([1], [])  # one caller still waits: the work goes on
    callers[1].cancel()
    for _ in range(3):
        await asyncio.sleep(0)
    assert stopped == [1]  # nobody waits any more: the work stopped
    assert len(memo) == 0

    async def quick() -> str:
        return "again"

    assert await memo.once("k", quick) == "again"  # not the cancelled task


def test_bounded_dict_drops_the_oldest_first() -> None:
    kept: BoundedDict[str, int] = BoundedDict(2)
    kept.put("a", 1)
    kept.put("b", 2)
    kept.put("a", 10)  # replacing a key does not evict
    assert (len(kept), kept.get("a"), kept.get("b")) == (2, 10, 2)
    kept.put("c", 3)
    assert ("a" in kept, kept.get("b"), kept.get("c")) == (False, 2, 3)


def test_bounded_dict_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BoundedDict(0)
