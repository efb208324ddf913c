"""The root Subscription: product groups and products created, updated or deleted in their
sources, as the change feed (:mod:`gateway.changes`) finds them.

A field subscribes to the feed when its operation starts, so a refusal (a limit, the client's
share, an unknown source, a malformed ``after``) is the operation's error before any event.
Each event is then served from its :class:`~gateway.changes.events.ChangeEvent`: ``node`` is the
record, resolved by the same types and resolvers as in queries, and with a
:class:`~gateway.graph.context.SubscriptionContext` each event is admitted for the client and
resolved as a request of its own
(:meth:`~gateway.graph.context.SubscriptionContext.next_event`).

**In the subscriber's name**: the feed finds changes with each source's configured account. For
a source with ``pass_through_header`` whose subscriber sent its own credential, the event's node
is read again with that credential (through the credential-keyed caches) before the event is
sent: an item the credential cannot see is not sent; a credential the upstream refuses gets the
source's error in place of the node; a DELETED item, which cannot be read again, is told by its
id alone.

When the gateway ends a subscription (a subscriber too slow, the gateway stopping, the client's
cost budget spent, its credentials no longer valid) the operation ends with one error:
``extensions.code`` ``SLOW_SUBSCRIBER``, ``SHUTTING_DOWN``, ``COST_BUDGET_EXCEEDED`` (with
``retryAfter``) or ``UNAUTHENTICATED``, and ``lastEventId``, the last event it received, to
resume after. A replay on subscribe sends at most ``[changes] max_replay_per_subscribe``
events, the newest; the first carries ``extensions.replay.skipped``, how many it left out.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, ClassVar

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from gateway.changes.events import ChangeEvent, ChangeType, Topic
from gateway.changes.feed import ChangeFeed
from gateway.changes.hub import Subscription as FeedSubscription
from gateway.errors import (
    BadUserInput,
    ErrorCode,
    GatewayError,
    SubscriptionEnded,
    SubscriptionRefused,
)
from gateway.graph.context import GatewayContext, SubscriptionContext
from gateway.graph.inputs import bounded_all
from gateway.graph.types import Product, ProductGroup, Source
from gateway.sources.records import SourceInfo, identity_only, node_key

__all__ = ["MAX_FILTER_SOURCES", "Change", "ChangeFilter", "ProductChange", "ProductGroupChange",
           "Subscription"]

GraphInfo = Info[GatewayContext, None]

MAX_FILTER_SOURCES = 50  # far above any deployment's sources; bounds the work of a filter
# An event id as the feed makes them ("<milliseconds>-<sequence>"); anything else is refused.
EVENT_ID = re.compile(r"[0-9]{1,15}-[0-9]{1,10}")

strawberry.enum(ChangeType, description="What happened to a node in its source.")


@strawberry.input(description="Which changes a subscription receives; without it, every change "
                              "of every watched source.")
class ChangeFilter:
    sources: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Source ids (configured source names) to hear from, at most "
                                  f"{MAX_FILTER_SOURCES}; each must have a change feed "
                                  "(`poll_interval_seconds` set).")
    changes: list[ChangeType] | None = strawberry.field(
        default=None, description="The kinds of change to receive (default: all).")


def _event_source(root: strawberry.Parent[ChangeEvent], info: GraphInfo) -> Source:
    info_: SourceInfo = info.context.adapters[root.source].info
    return info_  # type: ignore[return-value]  # served straight from the record


@strawberry.interface(description="A change the gateway found in a source: what `node` went "
                                  "through, where, when, and the event's id to resume after.")
class Change:
    change: ChangeType = strawberry.field(description="What happened to the node.")
    source: Source = strawberry.field(resolver=_event_source,
                                      description="The source it changed in.")
    observed_at: datetime = strawberry.field(
        description="When the gateway saw the change (the poll that found it).")
    id: str = strawberry.field(
        name="eventId", description="The event's id: subscribe again with `after:` it (or, "
                                    "over SSE, send it as `Last-Event-ID`) to receive what "
                                    "followed it, without a gap or a repeat.")

    topic: ClassVar[Topic]  # the feed's events each implementing type is served from

    @classmethod
    def is_type_of(cls, obj: object, _info: object) -> bool:
        """Served straight from the feed's events (as the other types from records)."""
        return isinstance(obj, ChangeEvent) and obj.topic is cls.topic


def _node(root: strawberry.Parent[ChangeEvent]) -> Any:  # the field's type: the record's
    """The event's node as its subscriber sees it, or why it could not be read for it."""
    if root.failure is not None:
        raise root.failure
    return root.record


@strawberry.type(description="A product group created, updated or deleted in its source.")
class ProductGroupChange(Change):
    topic: ClassVar[Topic] = Topic.GROUPS
    record: ProductGroup = strawberry.field(
        resolver=_node, name="node",
        description="The group as it is now (the same type as in queries: nested fields "
                    "resolve as there); for DELETED, its last known state.")


@strawberry.type(description="A product created, updated or deleted in its source.")
class ProductChange(Change):
    topic: ClassVar[Topic] = Topic.PRODUCTS
    record: Product = strawberry.field(
        resolver=_node, name="node",
        description="The product as it is now (the same type as in queries); for DELETED, its "
                    "last known state.")


AFTER = ("The id of the last event received (`eventId`): the events since are sent first. "
         "Only as many as the gateway keeps ([changes] replay_events) can be replayed.")


@strawberry.type(description="Changes in the sources as the gateway's polls find them (none of "
                             "the sources pushes): over WebSocket (graphql-transport-ws) or "
                             "Server-Sent Events at /graphql.")
class Subscription:
    @strawberry.subscription(description="Product groups created, updated or deleted: one "
                                         "event per change, in the order found.")
    async def product_group_changed(
        self, info: GraphInfo, filter: ChangeFilter | None = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> AsyncIterator[ProductGroupChange]:
        return await changes(info, Topic.GROUPS, filter, after)  # type: ignore[return-value]

    @strawberry.subscription(description="Products created, updated or deleted: one event per "
                                         "change, in the order found.")
    async def product_changed(
        self, info: GraphInfo, filter: ChangeFilter | None = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> AsyncIterator[ProductChange]:
        return await changes(info, Topic.PRODUCTS, filter, after)  # type: ignore[return-value]


async def changes(info: GraphInfo, topic: Topic, filter: ChangeFilter | None,
                  after: str | None) -> AsyncIterator[ChangeEvent]:
    """The events of ``topic`` the operation receives, its subscription taken now (a refusal
    raises here, before the operation has a stream)."""
    context = info.context
    feed = context.changes
    if feed is None:
        raise SubscriptionRefused("this gateway serves no subscriptions")
    sources = _sources(filter, context, topic, feed)
    kinds = frozenset(filter.changes) if filter is not None and filter.changes else None
    resume = _resume_after(after, context)
    owner = context.owner if isinstance(context, SubscriptionContext) else ""
    subscription = await feed.subscribe(topic, sources=sources, last_event_id=resume,
                                        owner=owner)
    return _Changes(subscription, context, kinds, after=resume)


def _sources(filter: ChangeFilter | None, context: GatewayContext, topic: Topic,
             feed: ChangeFeed) -> frozenset[str] | None:
    names = filter.sources if filter is not None else None
    if names is None:
        if not feed.watched.get(topic):
            raise SubscriptionRefused(
                f"no source's {_what(topic)} are watched for changes: set "
                "poll_interval_seconds ([defaults] or a [[sources]] entry)")
        return None
    if not names:
        raise BadUserInput("`filter.sources` is empty: leave it out to hear from every source")
    if len(names) > MAX_FILTER_SOURCES:
        raise BadUserInput(f"`filter.sources` names more than {MAX_FILTER_SOURCES} sources")
    bounded_all("filter.sources", names)
    unknown = [name for name in names if name not in context.adapters]
    if unknown:
        raise BadUserInput(f"`filter.sources`: no source '{unknown[0]}'")
    return frozenset(names)  # a configured source without a feed: the feed refuses it


def _what(topic: Topic) -> str:
    return "product groups" if topic is Topic.GROUPS else "products"


def _resume_after(after: str | None, context: GatewayContext) -> str | None:
    value = after if after is not None else (
        context.last_event_id if isinstance(context, SubscriptionContext) else None)
    if value is not None and not EVENT_ID.fullmatch(value):
        raise BadUserInput("the event id to resume after (`after`, or the Last-Event-ID "
                           "header) must be an `eventId` the gateway sent")
    return value


class _Changes:
    """A subscription's events as its operation consumes them: those its filter wants and its
    subscriber may see, each admitted and started as an event of its own in the context.
    Closed (or lost) by the operation, or ended, the subscription leaves the hub at once."""

    def __init__(self, subscription: FeedSubscription, context: GatewayContext,
                 kinds: frozenset[ChangeType] | None, *, after: str | None) -> None:
        self._subscription = subscription
        self._context = context
        self._kinds = kinds
        self._last = after  # the last event the client has: handed over, or resumed after
        self._skipped = subscription.skipped  # told once, with the first event

    def __aiter__(self) -> AsyncIterator[ChangeEvent]:
        return self

    async def __anext__(self) -> ChangeEvent:
        try:
            while True:
                event = await self._wanted()
                context = self._context
                if isinstance(context, SubscriptionContext):
                    await context.next_event(event.id)
                    seen = await _as_seen_by(event, context)
                    if seen is None:
                        continue  # the subscriber's credential cannot see it
                    event = seen
                    if self._skipped:
                        context.scope.notices["replay"] = {"skipped": self._skipped}
                        self._skipped = 0
                self._last = event.id
                return event
        except SubscriptionEnded as ended:
            self._subscription.close()
            extensions = dict(ended.extensions)
            if self._last is not None:
                extensions["lastEventId"] = self._last
            raise GraphQLError(ended.message, extensions=extensions) from None

    async def _wanted(self) -> ChangeEvent:
        while True:
            event = await self._next()
            if event.source in self._context.adapters and (
                    self._kinds is None or event.change in self._kinds):
                return event

    async def _next(self) -> ChangeEvent:
        """The next event; the subscription ends when its client's credentials expire."""
        context = self._context
        if not isinstance(context, SubscriptionContext) or context.ends_at is None:
            return await anext(self._subscription)
        try:
            return await asyncio.wait_for(anext(self._subscription),
                                          max(0.0, context.ends_at - context.clock.wall()))
        except TimeoutError:
            raise SubscriptionEnded("the bearer token has expired: subscribe again with a "
                                    "valid one", ErrorCode.UNAUTHENTICATED) from None

    async def aclose(self) -> None:
        self._subscription.close()

    def __del__(self) -> None:
        # An operation dropped before it consumed anything never closes its stream.
        self._subscription.close()


async def _as_seen_by(event: ChangeEvent, context: SubscriptionContext) -> ChangeEvent | None:
    """``event`` as its subscriber sees it: for a source whose subscriber sent its own
    credential, the node read again with it (None: it cannot see it; the source's error in
    its place when the upstream refuses it); as it is otherwise."""
    if event.source not in context.scope.credentials:
        return event
    if event.change is ChangeType.DELETED:
        return event.seen_as(identity_only(event.record))
    try:
        record = await context.loaders.node(node_key(event.record))
    except GatewayError as error:
        return event.seen_as(None, failure=error)
    return None if record is None else event.seen_as(record)
