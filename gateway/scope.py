"""What one GraphQL request carries from the HTTP edge to every upstream call it makes.

:class:`RequestScope` is built once per request by the endpoint. Besides the request's language,
id and deadline it holds the per-request memos, one per purpose, each with typed keys:

* ``calls``: upstream calls in flight or done (source, path, parameters, language), so identical
  calls in one request are made once (:class:`~gateway.upstream.client.UpstreamClient`);
* ``group_tables``: each source's whole group table, read once per request (adapters);
* ``group_product_lists``: an Axim group's whole product list, read once per request (adapters);
* ``selections``: what a field's value selects, per field of the query (the look-ahead);
* ``upstream_requests``: upstream calls made so far, against ``upstream_budget``
  (``[limits] max_upstream_requests``; the upstream client counts and refuses past it);
* ``slots``: per source, the calls of this request in flight at once (at most the source's
  ``max_concurrency``: a query priced within ``max_cost`` never fills the shared queue alone).

It also carries the client's own upstream credentials (``credentials``, per source with
``pass_through_header``); ``upstream_requests`` (above) is also what a client's cost budget is
charged.

``usage`` tallies, per source, what the request cost upstream (the transport layers count into
it): the request log line, ``extensions.cost`` and the metrics read it.

Nothing in a scope outlives its request: no cross-user cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.credentials import Credential
from gateway.languages import LanguageRange, parse_accept_language
from gateway.shared import SharedTasks

__all__ = ["CallKey", "RequestScope", "SourceUsage", "TaskMemo"]

K = TypeVar("K")
V = TypeVar("V")

# (source, path, sorted parameters, the language the source answers in or None)
CallKey = tuple[str, str, tuple[tuple[str, str], ...], str | None]


class TaskMemo(Generic[K, V]):
    """Runs ``make()`` once per key; concurrent and later callers await the same task.

    A caller that is cancelled does not cancel the shared task while another caller of the key
    still waits for it; the last one does (its request was abandoned: the work stops), and the
    key is then forgotten (:class:`~gateway.shared.SharedTasks`). Without ``keep``, only work
    still in flight is shared: a later caller runs ``make()`` again.
    """

    def __init__(self, *, keep: bool = True) -> None:
        self._tasks: SharedTasks[K, V] = SharedTasks(keep=keep)

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, key: K) -> bool:
        """Whether ``key``'s work is on or done in this request (a caller now joins it)."""
        return key in self._tasks

    async def once(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        return await self._tasks.run(key, make)

    def put(self, key: K, value: V) -> None:
        """``value`` as the key's result, had no caller asked for it yet (an answer that came
        without awaiting: no task)."""
        self._tasks.put(key, value)


@dataclass(slots=True)
class SourceUsage:
    """What one request cost one source."""

    requests: int = 0  # sent to the upstream, each try counted (what its request log shows)
    cache_hits: int = 0  # answered by a fresh upstream-cache entry
    stale_hits: int = 0  # answered by a stale entry for a failing upstream
    shared: int = 0  # joined an identical call another request had in flight
    seconds: float = 0.0  # time its upstream calls took, summed (concurrent calls each count)

    def report(self) -> dict[str, float | int]:
        return {"requests": self.requests, "cacheHits": self.cache_hits,
                "staleHits": self.stale_hits, "shared": self.shared,
                "ms": round(self.seconds * 1000, 1)}


@dataclass
class RequestScope:
    """Everything one GraphQL request carries to every upstream call it makes."""

    language: str | None = None  # the client's Accept-Language, as sent (checked at the edge)
    request_id: str = ""
    deadline: float | None = None  # clock.monotonic() by which the whole request must answer
    clock: Clock = SYSTEM_CLOCK  # what the deadline is read on
    max_response_bytes: int | None = None  # the answer's longest JSON ([limits])
    stale: dict[str, float] = field(default_factory=dict)  # source → seconds past fresh
    # clock.wall() until which every upstream answer read so far stays fresh (the response
    # cache keeps an answer no longer than this); an answer not cached makes it "now".
    fresh_until: float = float("inf")
    calls: TaskMemo[CallKey, Any] = field(default_factory=TaskMemo)
    # The adapters' records (gateway.sources.records, a layer above): each source's group
    # table, and (source, group upstream id) → every product of the group.
    group_tables: TaskMemo[str, Any] = field(default_factory=TaskMemo)
    group_product_lists: TaskMemo[tuple[str, str], list[Any]] = field(
        default_factory=TaskMemo)
    # ids of a field's AST nodes → names of the fields selected on its value
    selections: dict[tuple[int, ...], frozenset[str]] = field(default_factory=dict)
    # Read every answer from its source now, and store it (the change feed's polls): no cached
    # answer, decoded table or parsed record stands in for a read.
    refresh: bool = False
    upstream_budget: int | None = None  # upstream calls this request may make (None: any)
    upstream_requests: int = 0
    # source → this request's own slots: its calls to one source wait here, in the request,
    # beyond the source's max_concurrency, instead of filling the source's shared queue
    slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    def slot(self, source: str, limit: int) -> asyncio.Semaphore:
        """This request's slots for ``source`` (``limit`` calls in flight at once)."""
        slots = self.slots.get(source)
        if slots is None:
            slots = self.slots[source] = asyncio.Semaphore(limit)
        return slots

    def spend_upstream_request(self) -> bool:
        """Count one upstream call; False (not counted) when the budget is spent."""
        if self.upstream_budget is not None and self.upstream_requests >= self.upstream_budget:
            return False
        self.upstream_requests += 1
        return True
    # source → the client's own credential for it (pass_through_header), sent in place of the
    # configured token and part of every key of that source's data
    credentials: dict[str, Credential] = field(default_factory=dict)

    def credential_fingerprint(self, source: str) -> str:
        """The fingerprint of the client's credential for ``source``; "" for the configured
        token."""
        credential = self.credentials.get(source)
        return credential.fingerprint if credential is not None else ""
    usage: dict[str, SourceUsage] = field(default_factory=dict)  # source → its usage
    # What the answer's `extensions` say besides its data (a replay's bound, per event).
    notices: dict[str, Any] = field(default_factory=dict)

    def usage_of(self, source: str) -> SourceUsage:
        usage = self.usage.get(source)
        if usage is None:
            usage = self.usage[source] = SourceUsage()
        return usage

    def sent_requests(self) -> int:
        """Upstream requests sent (tries, retries included), every source."""
        return sum(usage.requests for usage in self.usage.values())

    def cache_hits(self) -> int:
        """Upstream answers served from the caches, every source."""
        return sum(usage.cache_hits for usage in self.usage.values())

    def __post_init__(self) -> None:
        if self.refresh:  # a call made again is read again (a poll re-reads a list that moved)
            self.calls = TaskMemo(keep=False)

    def fresh_for(self, until: float) -> None:
        """Note an answer the response was built from, fresh until ``until`` (wall clock)."""
        if until < self.fresh_until:
            self.fresh_until = until

    @cached_property
    def language_ranges(self) -> tuple[LanguageRange, ...]:
        """The client's language ranges, most preferred first: what adapters choose from (a
        source never sees the header as sent)."""
        return parse_accept_language(self.language) if self.language else ()
