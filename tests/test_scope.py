"""The per-request memo, and the entry-bounded dict of small per-process memos (the byte-bounded
LRU: tests/caches/test_bounded.py)."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from gateway.caches.bounded import BoundedDict
from gateway.scope import RequestMemo


async def test_request_memo_runs_once_per_key_for_concurrent_callers() -> None:
    memo: RequestMemo[str, int] = RequestMemo()
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


async def test_a_waiting_caller_that_leaves_does_not_stop_the_work() -> None:
    memo: RequestMemo[str, str] = RequestMemo()
    release = asyncio.Event()
    runs: list[str] = []

    async def make() -> str:
        runs.append("run")
        await release.wait()
        return "done"

    first = asyncio.ensure_future(memo.once("k", make))
    second = asyncio.ensure_future(memo.once("k", make))
    third = asyncio.ensure_future(memo.once("k", make))
    await asyncio.sleep(0)
    second.cancel()
    await asyncio.sleep(0)
    release.set()
    assert (await first, await third) == ("done", "done")
    assert second.cancelled()
    assert runs == ["run"]


async def test_the_runner_leaving_hands_the_work_to_a_caller_still_waiting() -> None:
    memo: RequestMemo[str, str] = RequestMemo()
    started: list[int] = []
    stopped: list[int] = []
    release = asyncio.Event()

    async def make() -> str:
        run = len(started) + 1
        started.append(run)
        try:
            await release.wait()
        finally:
            stopped.append(run)
        return f"run {run}"

    runner = asyncio.ensure_future(memo.once("k", make))
    waiter = asyncio.ensure_future(memo.once("k", make))
    await asyncio.sleep(0)
    runner.cancel()
    for _ in range(3):
        await asyncio.sleep(0)
    assert (started, stopped) == ([1, 2], [1])  # the runner's work stopped; the waiter's began
    release.set()
    assert await waiter == "run 2"
    assert runner.cancelled()
    assert await memo.once("k", make) == "run 2"  # kept for later callers


async def test_the_last_caller_leaving_stops_the_work_and_the_key_starts_afresh() -> None:
    memo: RequestMemo[str, str] = RequestMemo()
    started: list[int] = []

    async def make() -> str:
        started.append(len(started) + 1)
        await asyncio.Event().wait()  # never set: only a cancellation ends it
        return "never"

    callers = [asyncio.ensure_future(memo.once("k", make)) for _ in range(3)]
    await asyncio.sleep(0)
    for caller in callers:  # a request abandoned: its callers are cancelled together
        caller.cancel()
    for _ in range(3):
        await asyncio.sleep(0)
    assert started == [1]  # no caller took the work over: each one was leaving
    assert len(memo) == 0 and "k" not in memo

    async def quick() -> str:
        return "again"

    assert await memo.once("k", quick) == "again"


async def test_a_caller_cancelled_as_it_is_handed_the_work_hands_it_on() -> None:
    memo: RequestMemo[str, str] = RequestMemo()
    release = asyncio.Event()
    started: list[str] = []

    async def make(name: str) -> str:
        started.append(name)
        await release.wait()
        return name

    runner = asyncio.ensure_future(memo.once("k", partial(make, "runner")))
    second = asyncio.ensure_future(memo.once("k", partial(make, "second")))
    third = asyncio.ensure_future(memo.once("k", partial(make, "third")))
    await asyncio.sleep(0)
    runner.cancel()
    await asyncio.sleep(0)  # the runner has left: the second is handed the work...
    second.cancel()  # ...and is cancelled before it could start it
    release.set()
    assert await third == "third"
    assert started == ["runner", "third"]
    assert second.cancelled()


async def test_a_failure_is_the_outcome_of_every_caller_and_is_kept() -> None:
    memo: RequestMemo[str, str] = RequestMemo()
    runs: list[int] = []

    async def fails() -> str:
        runs.append(1)
        await asyncio.sleep(0)
        raise ValueError("upstream said no")

    answers = await asyncio.gather(memo.once("k", fails), memo.once("k", fails),
                                   return_exceptions=True)
    assert [str(a) for a in answers] == ["upstream said no"] * 2
    with pytest.raises(ValueError, match="upstream said no"):
        await memo.once("k", fails)
    assert runs == [1]


async def test_without_keep_only_work_in_flight_is_shared() -> None:
    memo: RequestMemo[str, int] = RequestMemo(keep=False)
    runs: list[int] = []

    async def make() -> int:
        runs.append(1)
        await asyncio.sleep(0)
        return len(runs)

    assert await asyncio.gather(memo.once("k", make), memo.once("k", make)) == [1, 1]
    assert await memo.once("k", make) == 2
    memo.put("k", 10)
    assert len(memo) == 0


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
