"""An answer in parts (``@defer``, ``@stream``): the parts after the first, as they are ready.

The first part is the plan's run without its deferred fragments and past its streams' initial
counts (:mod:`gateway.graph.executor`). What that run met is announced with it (``pending``:
an id, a path, a label) and executed afterwards, all at once: each deferred fragment on its
object, each streamed item as its own part. :class:`Later` sends each piece of work when it is
done, in the graphql-js 17 shape (``incremental``, ``completed``, ``pending``: the format of
graphql-core 3.3's ``experimental_execute_incrementally``), several in one part when they end
together; the edge writes it in the format the client asked for (:mod:`gateway.edge.parts`).

What it keeps of the spec's proposal (https://github.com/graphql/defer-stream-wg):

* a deferred part carries its fragment's whole selection (as ``deferSpec=20220824`` answers
  do); graphql-js 17 leaves out fields an earlier part sent. Merged, the answers are the same;
  the fields both select are resolved again within the request, whose memos and loaders make
  no second upstream call;
* a streamed list's items arrive in list order: an item that is ready waits for the one
  before it, and items ready together go in one part;
* a null that reaches a part's own root (a non-null field of the fragment, a non-null item)
  ends that work with its errors in ``completed``; a stream ends there;
* work under a position an earlier error nulled is never announced.

Source failures the resolvers report beside the data (the context's ``errors``) go with the
part whose path holds them; the public form of errors (codes, no internals) is the schema's
(:mod:`gateway.graph.extensions`), as for the first part.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from graphql import (
    REMOVE,
    DirectiveNode,
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    Visitor,
    visit,
)

from gateway.caches.bounded import BoundedDict
from gateway.graph.executor import DeferredWork, PartResult, PlanRun, StreamWork
from gateway.graph.plan import BadDirective, initial_count

__all__ = ["Completed", "Delivered", "Later", "Part", "Pending", "whole_execution"]

Path = tuple[str | int, ...]
PublicErrors = Callable[[list[GraphQLError]], list[GraphQLError]]


@dataclass(frozen=True, slots=True)
class Pending:
    """Work announced: its id, where its data goes, its label."""

    id: str
    path: Path
    label: str | None
    stream: bool
    start: int = 0  # a stream's: the index of its first item to come


@dataclass(slots=True)
class Delivered:
    """A deferred fragment's data, or a stream's next items."""

    id: str
    data: dict[str, Any] | None = None
    items: list[Any] | None = None
    errors: list[GraphQLError] = field(default_factory=list)


@dataclass(slots=True)
class Completed:
    """Work done (with errors: it ended without its data, a null reached its root)."""

    id: str
    errors: list[GraphQLError] | None = None


@dataclass(slots=True)
class Part:
    incremental: list[Delivered]
    completed: list[Completed]
    pending: list[Pending]
    has_next: bool


class _Work:
    """One announced piece of work: a deferred fragment, or a stream's items in order."""

    def __init__(self, pending: Pending, work: DeferredWork | StreamWork) -> None:
        self.pending = pending
        self.work = work
        self.futures: list[asyncio.Future[PartResult]] = []
        self.next = 0  # the next of ``futures`` to deliver

    def start(self, run: PlanRun) -> None:
        work = self.work
        if isinstance(work, DeferredWork):
            self.futures = [asyncio.ensure_future(run.deferred(work))]
        else:
            self.futures = [asyncio.ensure_future(run.item(work, work.start + offset))
                            for offset in range(len(work.rest))]

    def waiting(self) -> asyncio.Future[PartResult]:
        return self.futures[self.next]

    def cancel(self) -> None:
        for future in self.futures[self.next:]:
            future.cancel()


class Later:
    """The parts after the first: the work the first part's run met, announced by
    :meth:`announce` and delivered by :meth:`parts`."""

    def __init__(self, run: PlanRun, reported: Callable[[], Sequence[GraphQLError]],
                 public: PublicErrors) -> None:
        self.run = run
        self.reported = reported  # the context's source failures so far
        self.public = public
        self.seen = 0  # reported failures already placed in a part
        self.works: list[_Work] = []  # announced, not yet started
        self.active: dict[asyncio.Future[PartResult], _Work] = {}
        self.ids = 0
        self.first: list[Pending] = self.announce(run.later)

    def announce(self, met: Sequence[DeferredWork | StreamWork]) -> list[Pending]:
        """Announce the work a part met, but not under a position a null reached."""
        announced = []
        for work in met:
            if work.position.is_dead():
                if isinstance(work, StreamWork):
                    _close(work.rest)
                continue
            label = (work.plan.label if isinstance(work, DeferredWork) else
                     work.shape.stream.label if work.shape.stream is not None else None)
            pending = Pending(str(self.ids), work.path, label, isinstance(work, StreamWork),
                              work.start if isinstance(work, StreamWork) else 0)
            self.ids += 1
            self.works.append(_Work(pending, work))
            announced.append(pending)
        return announced

    def close(self) -> None:
        """Nothing will be sent (the client left before the first part): what the first
        part's run left to stream is let go."""
        for work in self.works:
            if isinstance(work.work, StreamWork):
                _close(work.work.rest)
        self.works = []

    async def parts(self) -> AsyncGenerator[Part, None]:
        """Each later part as soon as it is ready; what is pending is cancelled when the
        caller stops early (the client left)."""
        self.seen = len(self.reported())
        try:
            self._start()
            while self.active:
                done, _ = await asyncio.wait(self.active, return_when=asyncio.FIRST_COMPLETED)
                yield self._part([self.active.pop(future) for future in
                                  sorted(done, key=lambda f: int(self.active[f].pending.id))])
        finally:
            for work in self.active.values():
                work.cancel()
            self.close()

    def _start(self) -> None:
        for work in self.works:
            work.start(self.run)
            self.active[work.waiting()] = work
        self.works = []

    def _part(self, ready: list[_Work]) -> Part:
        """The work that is ready, in one part; its bytes count toward the next parts' budget
        (parts running together each count from what was done when they began)."""
        part = Part([], [], [], False)
        for work in ready:
            if isinstance(work.work, DeferredWork):
                self._deferred(work, part)
            else:
                self._items(work, part)
        self._place_reported(ready, part)
        self._start()
        part.has_next = bool(self.active)
        return part

    def _deferred(self, work: _Work, part: Part) -> None:
        result = work.futures[0].result()
        work.next = 1
        self.run.built += result.built
        errors = self.public(result.errors)
        if result.data is None:
            part.completed.append(Completed(work.pending.id, errors))
            return
        part.incremental.append(Delivered(work.pending.id, data=result.data, errors=errors))
        part.completed.append(Completed(work.pending.id))
        part.pending += self.announce(result.later)

    def _items(self, work: _Work, part: Part) -> None:
        """The stream's next items that are ready, in order; the stream ends after its last
        item, or at an item a null ended."""
        assert isinstance(work.work, StreamWork)
        items: list[Any] = []
        errors: list[GraphQLError] = []
        while work.next < len(work.futures) and work.futures[work.next].done():
            index = work.work.start + work.next
            result = work.futures[work.next].result()
            work.next += 1
            self.run.built += result.built
            if result.data is None:
                if items:
                    part.incremental.append(Delivered(work.pending.id, items=items,
                                                      errors=errors))
                work.cancel()
                part.completed.append(Completed(work.pending.id, self.public(result.errors)))
                return
            items.append(result.data[index])
            errors += self.public(result.errors)
            part.pending += self.announce(result.later)
        part.incremental.append(Delivered(work.pending.id, items=items, errors=errors))
        if work.next == len(work.futures):
            part.completed.append(Completed(work.pending.id))
        else:
            self.active[work.waiting()] = work

    def _place_reported(self, ready: list[_Work], part: Part) -> None:
        """Source failures reported since the last part, each with the delivered work whose
        path holds it (else with the first delivered)."""
        reported = self.reported()
        new, self.seen = list(reported[self.seen:]), len(reported)
        if not new or not part.incremental:
            return
        entries = {entry.id: entry for entry in part.incremental}
        by_path = sorted(((work.pending.path, entries[work.pending.id]) for work in ready
                          if work.pending.id in entries), key=lambda p: -len(p[0]))
        for error in new:
            path = tuple(error.path or ())
            entry = next((e for p, e in by_path if path[:len(p)] == p), part.incremental[0])
            entry.errors.append(error)


def _close(values: list[Any]) -> None:
    """Awaitables never awaited: coroutines closed, futures cancelled."""
    for value in values:
        if asyncio.iscoroutine(value):
            value.close()
        elif isinstance(value, asyncio.Future):
            with contextlib.suppress(Exception):
                value.cancel()


# -- the standard executor: one answer ----------------------------------------------------------

# Documents the standard path ran: each without its @defer and @stream, and its @stream
# directives (their arguments checked per request). Bounded; by identity: the document cache
# hands out one object per query text.
_WHOLE: BoundedDict[int, _Whole] = BoundedDict(256)


@dataclass(frozen=True, slots=True)
class _Whole:
    document: DocumentNode  # kept so the id() key stays this document's
    whole: DocumentNode
    streams: tuple[DirectiveNode, ...]


def whole_execution(execute: Callable[..., Any]) -> Callable[..., Any]:
    """graphql-core's incremental executor (``execute``) given the document without its
    ``@defer`` and ``@stream``: the standard path (compiled execution off, or an operation it
    cannot run) answers whole, in the document's order, as the spec lets a server do. Each
    ``@stream``'s arguments are checked as compiled execution checks them."""

    def run(schema: Any, document: DocumentNode, *args: Any, **kwargs: Any) -> Any:
        known = _without_parts(document)
        try:
            for directive in known.streams:
                initial_count(directive, kwargs.get("variable_values"))
        except BadDirective as bad:
            return ExecutionResult(None, [bad.error])
        return execute(schema, known.whole, *args, **kwargs)

    return run


def _without_parts(document: DocumentNode) -> _Whole:
    known = _WHOLE.get(id(document))
    if known is None or known.document is not document:
        streams: list[DirectiveNode] = []
        whole = cast(DocumentNode, visit(document, _Stripper(streams)))
        known = _Whole(document, whole, tuple(streams))
        _WHOLE.put(id(document), known)
    return known


class _Stripper(Visitor):
    """Removes ``@defer`` and ``@stream``, keeping the ``@stream`` directives it met."""

    def __init__(self, streams: list[DirectiveNode]) -> None:
        super().__init__()
        self.streams = streams

    def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
        if node.name.value == "stream":
            self.streams.append(node)
        return REMOVE if node.name.value in ("defer", "stream") else None
