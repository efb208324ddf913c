"""The change feed: pollers that ask each watched source what changed, and the subscriptions of
this process that hear about it. One object per gateway process (``app.state.changes``).

Example::

    feed = ChangeFeed.build(config, runtime.adapters, clock=runtime.clock)
    await feed.start()
    subscription = await feed.subscribe(Topic.GROUPS, sources=None, last_event_id=None)
    async for event in subscription:  # ChangeEvent, until the subscriber or the gateway ends it
        ...
    await feed.aclose()  # ends every subscription with SHUTTING_DOWN
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence

from gateway.changes.backends import Backend, MemoryBackend, RedisBackend
from gateway.changes.events import ChangeEvent, Topic
from gateway.changes.hub import ChangeHub, Subscription
from gateway.changes.poller import Poller, watches_of
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import ChangeSettings, Config, is_redis_url
from gateway.errors import ErrorCode, SubscriptionEnded, SubscriptionRefused
from gateway.observability.metrics import Metrics
from gateway.sources.base import SourceAdapter

__all__ = ["ChangeFeed"]

SHUTDOWN_MESSAGE = "the gateway is shutting down; reconnect with the last event id received"


class ChangeFeed:
    def __init__(self, settings: ChangeSettings, backend: Backend, pollers: Sequence[Poller],
                 *, watched: Mapping[Topic, frozenset[str]],
                 metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self.pollers = tuple(pollers)
        self.watched = dict(watched)  # topic -> the sources whose changes it announces
        self.hub = ChangeHub(max_subscriptions=settings.max_subscriptions,
                             queue_size=settings.queue_size,
                             max_per_owner=settings.max_subscriptions_per_client,
                             metrics=metrics)
        self._tasks: list[asyncio.Task[None]] = []
        self.closing = False  # the process is stopping: no new subscription

    @classmethod
    def build(cls, config: Config, adapters: Mapping[str, SourceAdapter], *,
              clock: Clock = SYSTEM_CLOCK, metrics: Metrics | None = None) -> ChangeFeed:
        settings = config.changes
        backend: Backend
        if is_redis_url(config.cache.url):
            backend = RedisBackend(config.cache.url, namespace=config.cache.namespace,
                                   lease_seconds=settings.lease_seconds,
                                   replay_events=settings.replay_events)
        else:
            backend = MemoryBackend(state_dir=settings.state_dir,
                                    replay_events=settings.replay_events, clock=clock)
        watches = [watch for adapter in adapters.values() for watch in watches_of(adapter)]
        pollers = [Poller(watch, backend, settings=settings, clock=clock, metrics=metrics)
                   for watch in watches if watch.interval is not None]
        watched = {topic: frozenset(p.watch.source for p in pollers if p.watch.topic is topic)
                   for topic in Topic}
        return cls(settings, backend, pollers, watched=watched, metrics=metrics)

    async def start(self) -> None:
        """Listen for events, and start every poller (each polls while it holds its lease)."""
        self._tasks.append(asyncio.create_task(self.backend.listen(self.hub.deliver)))
        self._tasks.extend(asyncio.create_task(poller.run()) for poller in self.pollers)

    def end_subscriptions(self) -> None:
        """End every subscription with SHUTTING_DOWN, and refuse new ones the same way: the
        process is about to stop (a drain began, or the server shuts down), and a client that
        reconnects elsewhere with its last event id misses nothing."""
        self.closing = True
        self.hub.end_all(SHUTDOWN_MESSAGE, ErrorCode.SHUTTING_DOWN)

    async def aclose(self) -> None:
        """Stop polling, give up leases and end every subscription with SHUTTING_DOWN."""
        self.end_subscriptions()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for poller in self.pollers:
            with contextlib.suppress(Exception):
                await self.backend.release(poller.watch.key)
        await self.backend.aclose()

    async def subscribe(self, topic: Topic, *, sources: frozenset[str] | None = None,
                        last_event_id: str | None = None, owner: str = "") -> Subscription:
        """``owner``'s subscription to ``topic`` (of ``sources``, or all watched); with
        ``last_event_id`` what followed that event is replayed first (the newest
        ``max_replay_per_subscribe`` of it). Raises :class:`SubscriptionRefused` past
        ``max_subscriptions`` or the owner's share, or for a source this feed does not watch;
        :class:`SubscriptionEnded` (SHUTTING_DOWN) once the process is stopping."""
        if self.closing:
            raise SubscriptionEnded(SHUTDOWN_MESSAGE, ErrorCode.SHUTTING_DOWN)
        unwatched = sorted((sources or frozenset()) - self.watched.get(topic, frozenset()))
        if unwatched:
            raise SubscriptionRefused(
                f"no change feed for {topic.value} of source '{unwatched[0]}' (its "
                "poll_interval_seconds is not set, or it has none)")
        subscription = self.hub.join(topic, sources, owner)
        if last_event_id is not None:
            subscription.replaying()
            try:
                replay = await self.backend.replay(last_event_id)
            except BaseException:
                subscription.close()
                raise
            subscription.replayed(replay, self.settings.max_replay_per_subscribe)
        return subscription

    async def announce(self, events: Sequence[ChangeEvent]) -> None:
        """Publish events that no poller found (tests; a future push source)."""
        await self.backend.publish(events)
