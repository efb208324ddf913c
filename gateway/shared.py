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

:class:`EagerStarts` runs a coroutine at once, up to where it first waits, and makes a task only
if it does (see its docstring for why, and what replaces it on Python 3.12).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from types import CoroutineType
from typing import Any, Generic, TypeVar, cast

__all__ = ["EagerStarts", "SharedTasks", "Start", "gather"]

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


class Start(enum.Enum):
    """How a coroutine's first step ended."""

    RETURNED = "returned"
    RAISED = "raised"
    WAITING = "waiting"  # it waits: a task continues it


class EagerStarts:
    """Coroutines run at once, up to where each first waits; a task only for one that does.

    Why: compiled execution (:mod:`gateway.graph.executor`) calls a field's resolver and gets a
    coroutine, and :func:`gather` is handed the loaders' and adapters' coroutines. Most of them
    end without ever waiting (a loader primed by the level above, an answer in a cache): a warm
    query's twenty ``products`` were twenty tasks, and a warm ``nodes`` query's lookups twenty
    more, each created, scheduled, stepped by the event loop and awaited, for a value that was
    ready at the first step. Started here, such a coroutine gives its value at once (no task,
    no turn of the event loop); one that waits goes on in a task, in the context it started
    in. Loaders batch as before: every load made before the caller next waits is in one batch.

    This is what an eager task does: Python 3.12's ``asyncio.Task(coro, eager_start=True)`` and
    ``asyncio.eager_task_factory`` (on 3.14 also ``loop.create_task(coro, eager_start=True)``).
    The gateway runs on 3.11, which has neither, so the first step is taken here and the task is
    given the coroutine where it stopped. Handing over a coroutine mid-way touches asyncio's
    private protocol between a task and the futures its coroutine yields; each touch is marked
    below with the public API that replaces it. On 3.12, :meth:`start` becomes
    ``asyncio.Task(coroutine, loop=loop, context=context, eager_start=True)`` (``task.done()``
    tells a coroutine that ended at once) and this class goes. ``continued``: the task
    continuing each coroutine that waited.
    """

    __slots__ = ("continued",)

    def __init__(self) -> None:
        self.continued: dict[asyncio.Future[Any], _Continuation] = {}

    def start(self, coroutine: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
        """Run ``coroutine`` up to where it first waits, in a copy of the current context (as
        a task would run it): ``(True, its value)`` when it ended without waiting (the
        exception it raised, as the value, when it failed); else ``(False, a task)`` that
        continues it, to be awaited."""
        how, outcome = self.step(coroutine)
        return how is not Start.WAITING, outcome

    def step(self, coroutine: Coroutine[Any, Any, Any]) -> tuple[Start, Any]:
        """As :meth:`start`, telling a value returned from an exception raised:
        ``(RETURNED, value)``, ``(RAISED, exception)`` or ``(WAITING, task)``."""
        context = contextvars.copy_context()
        try:
            waiting = context.run(coroutine.send, None)
        except StopIteration as done:
            return Start.RETURNED, done.value
        except Exception as error:
            return Start.RAISED, error
        if waiting is not None:
            # Private: a coroutine awaiting a future yields it marked as awaited
            # (``_asyncio_future_blocking``), for the task stepping it to see. No task steps
            # it yet: unmarked until one does, else another coroutine awaiting the same future
            # (one loader key) meanwhile would be refused. Public replacement: an eager task
            # (Python 3.12's ``eager_start=True``), which steps it itself.
            waiting._asyncio_future_blocking = False
        continuation = _Continuation(coroutine, waiting)
        task = asyncio.get_running_loop().create_task(continuation.run(), context=context)
        self.continued[task] = continuation
        return Start.WAITING, task

    def cancel(self, future: asyncio.Future[Any]) -> None:
        """Cancel ``future`` (one :meth:`start` returned, or another). A task cancelled before
        its first step never reaches its coroutine: a coroutine :meth:`start` handed to one
        is cancelled here too."""
        continuation = self.continued.get(future)
        if continuation is not None:
            continuation.cancel()
        future.cancel()


class _Continuation:
    """A coroutine started outside a task, continued where it waits (``waiting``: what it
    yielded, the future it waits for, or None) inside the task that awaits this."""

    __slots__ = ("coroutine", "started", "waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self.coroutine = coroutine
        self.waiting = waiting
        self.started = False

    async def run(self) -> Any:
        return await self

    def cancel(self) -> None:
        """Cancel the coroutine if its task has not begun (a started one passes its
        cancellation on)."""
        if self.started:
            return
        self.started = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            self.coroutine.throw(asyncio.CancelledError())
        self.coroutine.close()

    def __await__(self) -> Generator[Any, Any, Any]:
        # Yields to the task what the coroutine yields, and sends it what the task sends: the
        # task steps the coroutine as if it awaited it itself. Public replacement: an eager
        # task (Python 3.12), which is this task from the coroutine's first step.
        self.started = True
        coroutine, waiting = self.coroutine, self.waiting
        if waiting is not None:
            # Private: marked again as awaited (``_asyncio_future_blocking``), as the coroutine
            # left it before :meth:`EagerStarts.start` unmarked it; the task checks the mark
            # of what it is given. Public replacement: as above (nothing to hand over).
            waiting._asyncio_future_blocking = True
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # the task was cancelled, or its future failed
                try:
                    waiting = coroutine.throw(error)
                except StopIteration as done:
                    return done.value
                continue
            try:
                waiting = coroutine.send(sent)
            except StopIteration as done:
                return done.value


async def gather(*awaitables: Awaitable[Any], return_exceptions: bool = False) -> list[Any]:
    """:func:`asyncio.gather`'s results, each coroutine started at once (:mod:`gateway.shared`):
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
