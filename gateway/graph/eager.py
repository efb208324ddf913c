"""Eager start: a coroutine run at once, up to where it first waits, and a task only if it does.

Why: compiled execution (:mod:`gateway.graph.executor`) calls a field's resolver and gets a
coroutine. Most of them end without ever waiting (a loader primed by the level above, an answer
in a cache): a warm query's twenty ``products`` were twenty tasks, each created, scheduled,
stepped by the event loop and awaited, for a value that was ready at the first step. Started
here, such a coroutine gives its value at once (no task, no turn of the event loop); one that
waits goes on in a task, in the context it started in, and is awaited with the rest of its
level. Loaders batch as before: every load made before the executor next waits is in one batch.

This is what an eager task does: Python 3.12's ``asyncio.Task(coro, eager_start=True)`` and
``asyncio.eager_task_factory`` (on 3.14 also ``loop.create_task(coro, eager_start=True)``).
The gateway runs on 3.11, which has neither, so the first step is taken here and the task is
given the coroutine where it stopped. Handing over a coroutine mid-way touches asyncio's
private protocol between a task and the futures its coroutine yields; each touch is marked
below with the public API that replaces it. On 3.12, :meth:`EagerStarts.start` becomes
``asyncio.Task(coroutine, loop=loop, context=context, eager_start=True)`` (``task.done()``
tells a coroutine that ended at once) and this module goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["EagerStarts"]


class EagerStarts:
    """The coroutines one execution started: the task continuing each one that waited."""

    __slots__ = ("continued",)

    def __init__(self) -> None:
        self.continued: dict[asyncio.Future[Any], _Continuation] = {}

    def start(self, coroutine: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
        """Run ``coroutine`` up to where it first waits, in a copy of the current context (as
        a task would run it): ``(True, its value)`` when it ended without waiting (the
        exception it raised, as the value, when it failed); else ``(False, a task)`` that
        continues it, to be awaited."""
        context = contextvars.copy_context()
        try:
            waiting = context.run(coroutine.send, None)
        except StopIteration as done:
            return True, done.value
        except Exception as error:
            return True, error
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
        return False, task

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
