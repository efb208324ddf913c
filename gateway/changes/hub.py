"""Subscribers in this process: each has a bounded queue; the hub hands every event to the
subscriptions that want it, and ends one that falls behind rather than let it hold memory. The
hub holds at most ``max_subscriptions``, and each owner (a client) at most its share,
``max_per_owner``: one client cannot take every slot."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable

from gateway.changes.events import ChangeEvent, Topic
from gateway.errors import ErrorCode, SubscriptionEnded, SubscriptionRefused
from gateway.observability.metrics import Metrics

__all__ = ["ChangeHub", "Subscription", "event_order"]


def event_order(event_id: str) -> tuple[int, int]:
    """An event id ("<milliseconds>-<sequence>", as Redis streams make them) as a sortable key;
    a malformed id sorts first (a reconnect with it replays all that is kept)."""
    milliseconds, _, sequence = event_id.partition("-")
    try:
        return int(milliseconds), int(sequence or 0)
    except ValueError:
        return -1, -1


class Subscription:
    """One subscriber's events, in order. Iterating raises :class:`SubscriptionEnded` once the
    gateway ends it (too slow, or shutting down)."""

    def __init__(self, hub: ChangeHub, topic: Topic, sources: frozenset[str] | None,
                 queue_size: int, owner: str = "") -> None:
        self.topic = topic
        self.sources = sources
        self.owner = owner
        self.skipped = 0  # events a replay left out (the replay's bound)
        self._hub = hub
        self._events: deque[ChangeEvent] = deque()
        self._queue_size = queue_size
        self._ready = asyncio.Event()
        self._ended: SubscriptionEnded | None = None
        self._closed = False
        self._after = (-1, -1)  # events at or before this order were replayed: skip them live
        # Live events arriving while a reconnect's replay is read wait here, behind it.
        self._held: list[ChangeEvent] | None = None

    def wants(self, event: ChangeEvent) -> bool:
        return event.topic is self.topic and (self.sources is None or event.source in self.sources)

    def offer(self, event: ChangeEvent) -> None:
        """Queue ``event``; a subscriber whose queue is full is ended (it would hold memory)."""
        if self._closed or event_order(event.id) <= self._after:
            return
        if self._held is not None and len(self._held) < self._queue_size:
            self._held.append(event)
            return
        if len(self._events) >= self._queue_size or self._held is not None:
            self.end(f"the subscriber fell {self._queue_size} events behind and was dropped; "
                     "reconnect with the last event id received", ErrorCode.SLOW_SUBSCRIBER)
            return
        self._events.append(event)
        self._ready.set()

    def replaying(self) -> None:
        """A replay is being read: live events wait until :meth:`replayed` queues it, so they
        neither overtake it nor repeat what it holds."""
        if self._held is None:
            self._held = []

    def replayed(self, events: Iterable[ChangeEvent], most: int | None = None) -> None:
        """Queue events read back for a reconnect, the newest ``most`` of them (the others
        are counted in ``skipped``), then the live ones held meanwhile; live copies of what
        was replayed are skipped."""
        held, self._held = self._held or [], None
        wanted = [event for event in events if self.wants(event)]
        self.skipped = 0 if most is None else max(0, len(wanted) - most)
        for event in wanted[self.skipped:]:
            self.offer(event)
        if wanted:
            self._after = max(self._after, event_order(wanted[-1].id))
        for event in held:
            self.offer(event)

    def end(self, message: str, code: ErrorCode) -> None:
        """End the subscription: queued events are dropped, the iterator raises
        :class:`SubscriptionEnded` with ``message`` and ``code``."""
        if self._closed:
            return
        self._ended = SubscriptionEnded(message, code)
        self._events.clear()
        self._ready.set()
        self.close()

    def close(self) -> None:
        """The subscriber is gone (or ended): it leaves the hub."""
        if not self._closed:
            self._closed = True
            self._ready.set()
            self._hub.leave(self)

    def __aiter__(self) -> AsyncIterator[ChangeEvent]:
        return self

    async def __anext__(self) -> ChangeEvent:
        while not self._events:
            if self._ended is not None:
                raise self._ended
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()


class ChangeHub:
    """The subscriptions of this process, within ``max_subscriptions``."""

    def __init__(self, *, max_subscriptions: int, queue_size: int, max_per_owner: int = 0,
                 metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        self.max_subscriptions = max_subscriptions
        self.max_per_owner = max_per_owner or max_subscriptions
        self.queue_size = queue_size
        self._subscriptions: set[Subscription] = set()
        self._owned: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._subscriptions)

    def join(self, topic: Topic, sources: frozenset[str] | None, owner: str = ""
             ) -> Subscription:
        if len(self._subscriptions) >= self.max_subscriptions:
            raise SubscriptionRefused(
                f"the gateway serves at most {self.max_subscriptions} subscriptions; "
                "try again later")
        if self._owned[owner] >= self.max_per_owner:
            raise SubscriptionRefused(
                f"this client holds {self.max_per_owner} subscriptions, its share of this "
                "gateway ([changes] max_subscriptions_per_client): end one first")
        subscription = Subscription(self, topic, sources, self.queue_size, owner)
        self._subscriptions.add(subscription)
        self._owned[owner] += 1
        if self.metrics is not None:
            self.metrics.subscriptions.labels(topic.value).inc()
        return subscription

    def leave(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.discard(subscription)
            self._owned[subscription.owner] -= 1
            if self._owned[subscription.owner] <= 0:
                del self._owned[subscription.owner]
            if self.metrics is not None:
                self.metrics.subscriptions.labels(subscription.topic.value).dec()

    def resize(self, *, max_subscriptions: int, queue_size: int, max_per_owner: int) -> None:
        """New bounds (a reload): subscriptions already open stay, new ones meet them."""
        self.max_subscriptions = max_subscriptions
        self.max_per_owner = max_per_owner or max_subscriptions
        self.queue_size = queue_size

    def end_where(self, ended: Callable[[Subscription], bool], message: str,
                  code: ErrorCode) -> None:
        for subscription in list(self._subscriptions):
            if ended(subscription):
                subscription.end(message, code)

    def deliver(self, event: ChangeEvent) -> None:
        for subscription in list(self._subscriptions):
            if subscription.wants(event):
                subscription.offer(event)

    def end_all(self, message: str, code: ErrorCode) -> None:
        for subscription in list(self._subscriptions):
            subscription.end(message, code)
