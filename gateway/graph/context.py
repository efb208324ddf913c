"""The GraphQL context: what every resolver of one request may use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from graphql import GraphQLError

from gateway.changes.feed import ChangeFeed
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import GatewayError
from gateway.graph.cursors import CursorCodec
from gateway.graph.loaders import RequestLoaders
from gateway.scope import RequestScope
from gateway.sources.base import SourceAdapter

if TYPE_CHECKING:
    from gateway.graph.incremental import Later

__all__ = ["GatewayContext", "SubscriptionContext"]

_ReportKey = tuple[str | None, str, tuple[str | int, ...] | None]


@dataclass
class GatewayContext:
    """Everything a resolver may use for one GraphQL request.

    ``scope`` goes with every upstream call (language, request id, deadline, per-request memos);
    ``loaders`` batch and de-duplicate lookups; ``report`` collects source failures that cost
    part of a list but not the field (``errors``), to be reported beside the data.
    """

    adapters: Mapping[str, SourceAdapter]
    scope: RequestScope
    cursors: CursorCodec  # signs and reads this deployment's cursors
    changes: ChangeFeed | None = None  # what subscriptions listen to (gateway/changes)
    # The client takes an answer in parts (@defer, @stream); the parts after the first, when
    # the answer has any (set by compiled execution: gateway/graph/incremental.py).
    incremental: bool = False
    later: Later | None = field(default=None, init=False)
    # Source failures by (source, code, path): one error each, however often it happened.
    _reported: dict[_ReportKey, GraphQLError] = field(default_factory=dict, init=False)

    @cached_property
    def loaders(self) -> RequestLoaders:
        """Made on first use: a request answered from the response cache never needs them."""
        return RequestLoaders(self.adapters, self.scope)

    @property
    def errors(self) -> list[GraphQLError]:
        """The reported failures, in the order first seen."""
        return list(self._reported.values())

    def report(self, error: GatewayError, path: list[str | int] | None = None) -> None:
        """Record a source failure that leaves the rest of the answer intact.

        The same failure (source, code and path) is reported once, with ``extensions.count``
        saying how often it happened when more than once; constant time per report.
        """
        key = (error.source, error.code.value, None if path is None else tuple(path))
        known = self._reported.get(key)
        if known is None:
            self._reported[key] = GraphQLError(error.message, path=path,
                                               extensions=error.extensions)
            return
        extensions = known.extensions if known.extensions is not None else {}
        extensions["count"] = extensions.get("count", 1) + 1
        known.extensions = extensions


@dataclass(kw_only=True)
class SubscriptionContext(GatewayContext):
    """The context of one subscription, a standing request: each event it emits is admitted
    for its client (``admit``: its credentials still hold, its cost budget has room; else
    :class:`~gateway.errors.SubscriptionEnded`), then resolved as a request of its own, with a
    fresh scope (deadline, upstream budget, memos), loaders and reports, and the client is
    charged what resolving it cost (:meth:`next_event`)."""

    new_scope: Callable[[], RequestScope]  # a scope for the next event, like the first one
    admit: Callable[[], Awaitable[None]]  # admits the next event, or raises SubscriptionEnded
    charge: Callable[[int], Awaitable[None]]  # charges the client this many upstream requests
    owner: str = ""  # whose subscription it is (the client's rate key): its share is counted
    ends_at: float | None = None  # when the client's credentials expire (clock.wall())
    clock: Clock = SYSTEM_CLOCK
    # Where a reconnecting client resumes when its operation does not say (SSE Last-Event-ID).
    last_event_id: str | None = None
    event_id: str | None = None  # the event being resolved (SSE sends it as the event's id)

    async def next_event(self, event_id: str) -> None:
        """Start resolving the event ``event_id`` (the previous one is done: the transport sent
        it before asking for the next), once it is admitted."""
        await self.charge(self.scope.upstream_requests)
        self.scope.upstream_requests = 0  # charged: an event refused next is not charged twice
        await self.admit()
        self.scope = self.new_scope()
        self.__dict__.pop("loaders", None)  # the cached property: made again on first use
        self._reported.clear()
        self.event_id = event_id
