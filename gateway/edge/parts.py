"""An answer in parts written for the client: ``multipart/mixed`` in the format it asked for,
or ``next`` events of an event stream.

Two formats (the request's ``incremental``, negotiated from ``Accept``):

* ``deferSpec=20220824`` (Apollo Router's; Apollo Client's ``Defer20220824Handler``; what a bare
  ``multipart/mixed``, GraphiQL's, gets): the first part ``{data, errors?, hasNext}``, then
  ``{incremental: [{data, path, label?, errors?} | {items, path, label?, errors?}], hasNext}``,
  a streamed item's path ending with its index (one entry per item); work that ended without
  its data sends ``data: null`` (``items: null``) with its errors;
* ``incrementalSpec=v0.2`` (graphql-js 17.0.0-alpha.9; ``GraphQL17Alpha9Handler``; graphql-core
  3.3's ``experimental_execute_incrementally``): the first part announces its work
  (``pending: [{id, path, label?}]``), later ones carry ``incremental: [{id, data | items,
  errors?}]``, ``completed: [{id, errors?}]`` and the work they announce.

Each part goes out as soon as it is ready, followed at once by the boundary that ends it
(a client's parser emits a part when it sees the next boundary); the last closes the body.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from graphql import GraphQLError

from gateway.edge.bodies import formatted, too_large, too_large_body
from gateway.edge.request import DEFER_SPEC, MULTIPART
from gateway.edge.sse import COMPLETE, next_frame
from gateway.errors import ErrorCode
from gateway.graph.incremental import Completed, Later, Part, Pending

__all__ = ["BOUNDARY", "PartsWriter", "multipart_type", "one_part"]

BOUNDARY = "graphql"
_HEAD = b"\r\nContent-Type: application/json; charset=utf-8\r\n\r\n"
_DELIMITER = b"\r\n--" + BOUNDARY.encode()
_END = b"--\r\n"


def multipart_type(spec: str) -> str:
    return f'{MULTIPART}; boundary="{BOUNDARY}"; {spec}'


def one_part(body: bytes) -> bytes:
    """A whole answer (a response-cache hit) as the one part of a multipart body."""
    return _DELIMITER + _HEAD + _last(body) + _DELIMITER + _END


def _last(body: bytes) -> bytes:
    """A whole answer's JSON object as the last part: ``hasNext`` false added."""
    return body[:-1] + b',"hasNext":false}'


class PartsWriter:
    """Formats one answer's parts in ``spec``, and writes them as multipart or as events;
    ``codes`` collects their errors' codes (the exchange's); ``finished(count)`` is awaited
    once the last part is out or the client left."""

    def __init__(self, spec: str, codes: list[str] | None, *, max_bytes: int,
                 sent: Callable[[], None], finished: Callable[[], Awaitable[None]]) -> None:
        self.legacy = spec == DEFER_SPEC
        self.codes = codes
        self.max_bytes = max_bytes  # of all parts' JSON together ([limits] max_response_bytes)
        self.size = 0
        self.sent = sent
        self.finished = finished
        self.announced: dict[str, Pending] = {}
        self.open: dict[str, Pending] = {}  # announced, not completed
        self.next_index: dict[str, int] = {}  # a stream's next item (legacy paths)

    def first(self, body: dict[str, Any], pending: list[Pending]) -> dict[str, Any]:
        """The first part: the answer's body (data, errors, extensions) and its work."""
        self._announce(pending)
        if not self.legacy:
            body["pending"] = [self._pending(p) for p in pending]
        body["hasNext"] = True
        return body

    async def multipart(self, first: dict[str, Any], later: Later) -> AsyncIterator[bytes]:
        head = _DELIMITER + _HEAD  # the first part opens the body
        async for body in self._bodies(first, later):
            yield head + _ascii(body) + _DELIMITER + (b"" if _more(body) else _END)
            head = _HEAD

    async def events(self, first: dict[str, Any], later: Later) -> AsyncIterator[bytes]:
        async for body in self._bodies(first, later):
            yield next_frame(body)
        yield COMPLETE

    async def _bodies(self, first: dict[str, Any], later: Later) -> AsyncIterator[bytes]:
        """Each part's JSON; once the parts pass ``max_bytes``, a last part that ends the
        work still open with ``RESPONSE_TOO_LARGE`` (nothing more is built)."""
        body = orjson.dumps(first)
        self.size = len(body)
        try:
            if self.size > self.max_bytes:
                later.close()
                yield _last(too_large_body(self.max_bytes))
                return
            yield body
            self.sent()
            async with contextlib.aclosing(later.parts()) as parts:
                async for part in parts:
                    still_open = list(self.open)
                    body = orjson.dumps(self._format(part))
                    self.size += len(body)
                    if self.size > self.max_bytes:
                        yield orjson.dumps(self._format(Part([], [
                            Completed(id_, [_too_large(self.max_bytes)]) for id_ in still_open],
                            [], False)))
                        return
                    yield body
        finally:
            await self.finished()

    def _format(self, part: Part) -> dict[str, Any]:
        for done in part.completed:
            self.open.pop(done.id, None)
        return self._legacy(part) if self.legacy else self._current(part)

    # -- graphql-js 17 (incrementalSpec=v0.2) ------------------------------------------------

    def _current(self, part: Part) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if part.pending:
            self._announce(part.pending)
            body["pending"] = [self._pending(p) for p in part.pending]
        if part.incremental:
            body["incremental"] = [{
                "id": entry.id,
                **({"data": entry.data} if entry.items is None else {"items": entry.items}),
                **self._errors(entry.errors)} for entry in part.incremental]
        if part.completed:
            body["completed"] = [{"id": done.id, **self._errors(done.errors)}
                                 for done in part.completed]
        body["hasNext"] = part.has_next
        return body

    @staticmethod
    def _pending(pending: Pending) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": pending.id, "path": list(pending.path)}
        if pending.label is not None:
            entry["label"] = pending.label
        return entry

    # -- deferSpec=20220824 ---------------------------------------------------------------

    def _legacy(self, part: Part) -> dict[str, Any]:
        self._announce(part.pending)
        incremental: list[dict[str, Any]] = []
        for entry in part.incremental:
            pending = self.announced[entry.id]
            if entry.items is None:
                incremental.append({"data": entry.data, **self._where(pending),
                                    **self._errors(entry.errors)})
                continue
            errors = self._errors(entry.errors)
            for item in entry.items:
                incremental.append({"items": [item], **self._where(pending, item=True),
                                    **errors})
                errors = {}
        for done in part.completed:  # work that ended without its data
            if done.errors:
                pending = self.announced[done.id]
                empty = "items" if pending.stream else "data"
                incremental.append({empty: None, **self._where(pending, item=pending.stream),
                                    **self._errors(done.errors)})
        body: dict[str, Any] = {"incremental": incremental} if incremental else {}
        body["hasNext"] = part.has_next
        return body

    def _where(self, pending: Pending, *, item: bool = False) -> dict[str, Any]:
        """An entry's path (a stream's: its next item's) and label."""
        path = list(pending.path)
        if item:
            index = self.next_index[pending.id]
            self.next_index[pending.id] = index + 1
            path.append(index)
        where: dict[str, Any] = {"path": path}
        if pending.label is not None:
            where["label"] = pending.label
        return where

    # -- both ------------------------------------------------------------------------------

    def _announce(self, pending: list[Pending]) -> None:
        for announced in pending:
            self.announced[announced.id] = self.open[announced.id] = announced
            if announced.stream:
                self.next_index[announced.id] = announced.start

    def _errors(self, errors: list[GraphQLError] | None) -> dict[str, Any]:
        if not errors:
            return {}
        shown = [formatted(error, ErrorCode.GRAPHQL_VALIDATION_FAILED) for error in errors]
        if self.codes is not None:
            self.codes += [error["extensions"]["code"] for error in shown]
        return {"errors": shown}


def _too_large(max_bytes: int) -> GraphQLError:
    message, extensions = too_large(max_bytes)
    return GraphQLError(message, extensions=extensions)


def _ascii(body: bytes) -> bytes:
    """A part's JSON in ASCII (other characters escaped): GraphiQL 3's multipart reader decodes
    each network read on its own, and a character split between two reads shows garbled."""
    if body.isascii():
        return body
    return json.dumps(orjson.loads(body), separators=(",", ":")).encode()


def _more(body: bytes) -> bool:
    return not body.endswith(b'"hasNext":false}')
