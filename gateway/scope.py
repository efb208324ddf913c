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
from typing import Any, Generic, TypeVar, cast

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.credentials import Credential
from gateway.languages import LanguageRange, parse_accept_language

__all__ = ["CallKey", "RequestMemo", "RequestScope", "SourceUsage"]

K = TypeVar("K")
V = TypeVar("V")

# (source, path, sorted parameters, the language the source answers in or None)
CallKey = tuple[str, str, tuple[tuple[str, str], ...], str | None]


class RequestMemo(Generic[K, V]):
    """Runs ``make()`` once per key; concurrent and later callers get its outcome (a result or
    an exception). Without ``keep``, only work still in flight is shared: a later caller runs
    ``make()`` again.

    The first caller of a key runs ``make()`` itself, in its own task: a task per call, and the
    shield each caller needed to leave it, were 9 us of CPU on every upstream call of a fan-out.
    Callers that come while it runs wait for its outcome. A caller that leaves (cancelled) stops
    only its own wait; if it was the one running ``make()``, the work it had done is lost with
    it, and the next caller still waiting runs ``make()`` afresh for the rest. One request's
    callers are almost always cancelled together (its client left, its deadline passed): then
    the work simply stops, as the request was abandoned.
    """

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self._outcomes: dict[K, tuple[bool, Any]] = {}  # key → (succeeded, value or error)
        self._waiting: dict[K, list[asyncio.Future[Any]]] = {}  # key in flight → its waiters

    def __len__(self) -> int:
        return len(self._outcomes) + len(self._waiting)

    def __contains__(self, key: K) -> bool:
        """Whether ``key``'s work is on or done in this request (a caller now joins it)."""
        return key in self._outcomes or key in self._waiting

    async def once(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        outcome = self._outcomes.get(key)
        if outcome is not None:
            return cast(V, _unpacked(outcome))
        waiters = self._waiting.get(key)
        if waiters is None:
            waiters = self._waiting[key] = []
        else:
            outcome = await self._wait(key, waiters)
            if outcome is not _YOURS:
                return cast(V, _unpacked(outcome))
        return await self._run(key, make, waiters)

    def put(self, key: K, value: V) -> None:
        """``value`` as the key's result, had no caller asked for it yet (an answer that came
        without awaiting)."""
        if self.keep:
            self._outcomes[key] = (True, value)

    async def _wait(self, key: K, waiters: list[asyncio.Future[Any]]) -> Any:
        """The outcome of the run in flight, or ``_YOURS``: its runner left, run it now."""
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter in waiters:
                waiters.remove(waiter)
            elif not waiter.cancelled() and waiter.result() is _YOURS:
                self._hand_over(key, waiters)  # handed the work as this caller left
            raise

    async def _run(self, key: K, make: Callable[[], Awaitable[V]],
                   waiters: list[asyncio.Future[Any]]) -> V:
        try:
            value = await make()
        except asyncio.CancelledError:
            self._hand_over(key, waiters)
            raise
        except BaseException as error:
            self._settle(key, waiters, (False, error))
            raise
        self._settle(key, waiters, (True, value))
        return value

    def _settle(self, key: K, waiters: list[asyncio.Future[Any]], outcome: tuple[bool, Any]
                ) -> None:
        del self._waiting[key]
        if self.keep:
            self._outcomes[key] = outcome
        for waiter in waiters:
            if not waiter.done():  # done: cancelled, its caller about to leave
                waiter.set_result(outcome)

    def _hand_over(self, key: K, waiters: list[asyncio.Future[Any]]) -> None:
        """The runner left: the next caller still waiting runs ``make()``; none, it is over."""
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(_YOURS)
                return
        del self._waiting[key]


_YOURS = object()  # a waiter's turn to run the work


def _unpacked(outcome: tuple[bool, Any]) -> Any:
    succeeded, value = outcome
    if succeeded:
        return value
    raise value


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
    calls: RequestMemo[CallKey, Any] = field(default_factory=RequestMemo)
    # The adapters' records (gateway.sources.records, a layer above): each source's group
    # table, and (source, group upstream id) → every product of the group.
    group_tables: RequestMemo[str, Any] = field(default_factory=RequestMemo)
    group_product_lists: RequestMemo[tuple[str, str], list[Any]] = field(
        default_factory=RequestMemo)
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
            self.calls = RequestMemo(keep=False)

    def fresh_for(self, until: float) -> None:
        """Note an answer the response was built from, fresh until ``until`` (wall clock)."""
        if until < self.fresh_until:
            self.fresh_until = until

    @cached_property
    def language_ranges(self) -> tuple[LanguageRange, ...]:
        """The client's language ranges, most preferred first: what adapters choose from (a
        source never sees the header as sent)."""
        return parse_accept_language(self.language) if self.language else ()
