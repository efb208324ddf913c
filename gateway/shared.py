"""Work shared by every caller of one key, and cancelled once none of them waits for it.

:class:`SharedTasks` runs ``make()`` once per key as a task; concurrent callers of the key
await that task. A caller that stops waiting (cancelled: its client left; or past its own
deadline) does not cancel it while another caller still waits; the last one to stop cancels it,
so abandoned work (upstream calls, page after page of a table) stops at once.

Used by the in-flight de-duplication of upstream calls across requests
(:mod:`gateway.upstream.dedup`) and by the per-request memos (:class:`gateway.scope.TaskMemo`).

Example::

    calls: SharedTasks[str, bytes] = SharedTasks(keep=False)
    body = await calls.run("GET /items", fetch_items)

:func:`gather` is :func:`asyncio.gather` without a task for a coroutine that ends at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from types import CoroutineType
from typing import Any, Generic, TypeVar, cast

from gateway.eager import EagerStarts, Start

__all__ = ["SharedTasks", "gather"]

K = TypeVar("K")
V = TypeVar("V")


class SharedTasks(Generic[K, V]):
    """One task per key, awaited by every caller of the key.

    ``keep``: a finished task stays, and later callers get its result (a memo); otherwise it is
    forgotten when it finishes, and the next caller starts another. A task cancelled because
    nobody waited for it any more is always forgotten.
    """

    def __init__(self, *, keep: bool) -> None:
        self.keep = keep
        self._tasks: dict[K, asyncio.Future[V]] = {}
        self._waiting: dict[asyncio.Future[V], int] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, key: K) -> bool:
        """Whether a task of ``key`` is on (or kept): a caller now would join it."""
        return key in self._tasks

    async def run(self, key: K, make: Callable[[], Awaitable[V]], *,
                  timeout: float | None = None) -> V:
        """The result of the key's task (started by ``make()`` if none is on); with ``timeout``,
        ``TimeoutError`` after that many seconds of waiting."""
        task = self._tasks.get(key)
        if task is not None and task.done():  # a kept result: no waiting to count or shield
            return task.result()
        if task is None:
            task = asyncio.ensure_future(make())
            self._tasks[key] = task
            if not self.keep:
                task.add_done_callback(lambda done: self._forget(key, done))
        self._waiting[task] = self._waiting.get(task, 0) + 1
        try:
            # Shielded: this caller leaving must not cancel what others wait for. A timeout
            # scope, not wait_for: on Python 3.11 that wraps the wait in a task of its own.
            if timeout is None:
                return await asyncio.shield(task)
            async with asyncio.timeout(timeout):
                return await asyncio.shield(task)
        finally:
            self._left(key, task)

    def put(self, key: K, value: V) -> None:
        """``value`` as the key's result, as if a task had made it (kept: with ``keep`` only)."""
        if self.keep:
            done: asyncio.Future[V] = asyncio.get_running_loop().create_future()
            done.set_result(value)
            self._tasks[key] = done

    def _left(self, key: K, task: asyncio.Future[V]) -> None:
        waiting = self._waiting[task] - 1
        if waiting:
            self._waiting[task] = waiting
            return
        del self._waiting[task]
        if not task.done():
            task.cancel()  # nobody waits for it any more
            self._forget(key, task)

    def _forget(self, key: K, task: asyncio.Future[V]) -> None:
        if self._tasks.get(key) is task:  # a newer task of the key stays
            del self._tasks[key]


async def gather(*awaitables: Awaitable[Any], return_exceptions: bool = False) -> list[Any]:
    """:func:`asyncio.gather`'s results, each coroutine started at once (:mod:`gateway.eager`):
    one that ends without waiting gives its value with no task and no turn of the event loop
    (an answer in a cache, a loader primed: a warm ``nodes`` query's lookups were twenty
    tasks); those that wait, and other awaitables, are awaited together. A lone awaitable is
    awaited as it is. Without ``return_exceptions`` the first failure is raised, as asyncio's
    does; one raised at the first step also cancels what was started before it."""
    if len(awaitables) == 1:
        try:
            return [await awaitables[0]]
        except Exception as error:  # as gather's return_exceptions gives it (not a cancellation)
            if return_exceptions:
                return [error]
            raise
    starts = EagerStarts()
    results: list[Any] = [None] * len(awaitables)
    waiting: list[tuple[int, Awaitable[Any]]] = []
    for i, awaitable in enumerate(awaitables):
        if type(awaitable) is not CoroutineType:
            waiting.append((i, awaitable))
            continue
        how, outcome = starts.step(cast(Coroutine[Any, Any, Any], awaitable))
        if how is Start.WAITING:
            waiting.append((i, outcome))
        elif how is Start.RETURNED or return_exceptions:
            results[i] = outcome
        else:
            _abandon(starts, [w for _, w in waiting], awaitables[i + 1:])
            raise outcome
    if waiting:
        try:
            done = await asyncio.gather(*(w for _, w in waiting),
                                        return_exceptions=return_exceptions)
        except asyncio.CancelledError:
            _abandon(starts, [w for _, w in waiting], ())
            raise
        for (i, _), value in zip(waiting, done, strict=True):
            results[i] = value
    return results


def _abandon(starts: EagerStarts, started: Sequence[Awaitable[Any]],
             unstarted: Sequence[Awaitable[Any]]) -> None:
    """Cancel what a gather started (a coroutine handed to a task that has not begun is
    cancelled too: :meth:`EagerStarts.cancel`), and close the coroutines it never started."""
    for awaitable in started:
        if isinstance(awaitable, asyncio.Future):
            starts.cancel(awaitable)
    for awaitable in unstarted:
        if type(awaitable) is CoroutineType:
            cast(Coroutine[Any, Any, Any], awaitable).close()
