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

:func:`gather` is :func:`asyncio.gather` without a task for a lone awaitable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

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
    """:func:`asyncio.gather`'s results; a lone awaitable is awaited as it is, without the task
    gather wraps a coroutine in (most pages are read in one call, most lookups ask one source:
    on a warm query those tasks were a tenth of the CPU)."""
    if len(awaitables) != 1:
        return list(await asyncio.gather(*awaitables, return_exceptions=return_exceptions))
    try:
        return [await awaitables[0]]
    except Exception as error:  # as gather's return_exceptions gives it (not a cancellation)
        if return_exceptions:
            return [error]
        raise
