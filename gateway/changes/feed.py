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
                 metrics: Metrics | None = None, clock: Clock = SYSTEM_CLOCK,
                 backend_key: tuple[object, ...] = ()) -> None:
        self.settings = settings
        self.backend = backend
        self.backend_key = backend_key  # the settings the backend was made from
        self.pollers = tuple(pollers)
        self.watched = dict(watched)  # topic -> the sources whose changes it announces
        self.metrics = metrics
        self.clock = clock
        self.hub = ChangeHub(max_subscriptions=settings.max_subscriptions,
                             queue_size=settings.queue_size,
                             max_per_owner=settings.max_subscriptions_per_client,
                             metrics=metrics)
        self._listening: asyncio.Task[None] | None = None
        self._polling: list[asyncio.Task[None]] = []
        self.closing = False  # the process is stopping: no new subscription

    @classmethod
    def build(cls, config: Config, adapters: Mapping[str, SourceAdapter], *,
              clock: Clock = SYSTEM_CLOCK, metrics: Metrics | None = None) -> ChangeFeed:
        settings = config.changes
        backend: Backend
        if is_redis_url(config.cache.url):
            backend = RedisBackend(config.cache, namespace=config.cache.namespace,
                                   lease_seconds=settings.lease_seconds,
                                   replay_events=settings.replay_events)
        else:
            backend = MemoryBackend(state_dir=settings.state_dir,
                                    replay_events=settings.replay_events, clock=clock)
        pollers = _pollers(config, adapters, backend, clock=clock, metrics=metrics)
        return cls(settings, backend, pollers, watched=_watched(pollers), metrics=metrics,
                   clock=clock, backend_key=backend_key(config))

    async def start(self) -> None:
        """Listen for events, and start every poller (each polls while it holds its lease)."""
        self._listening = asyncio.create_task(self.backend.listen(self.hub.deliver))
        self._polling = [asyncio.create_task(poller.run()) for poller in self.pollers]

    def keeps(self, config: Config) -> bool:
        """Whether ``config`` has this feed's backend (the same store, leases and stream): a
        reload then :meth:`reconfigure` s it; else a new feed replaces it."""
        return self.backend_key == backend_key(config)

    async def reconfigure(self, config: Config, adapters: Mapping[str, SourceAdapter]
                          ) -> None:
        """Watch what ``config`` watches from now on, with the same backend and hub: new
        pollers (each takes its lease and the state where the last poll left it, so nothing
        is announced twice or missed); the subscriptions stay, but one naming a source no
        longer watched ends with SOURCE_REMOVED."""
        pollers = _pollers(config, adapters, self.backend, clock=self.clock,
                           metrics=self.metrics)
        await _cancel(self._polling)
        kept = {poller.watch.key for poller in pollers}
        for poller in self.pollers:
            if poller.watch.key not in kept:
                with contextlib.suppress(Exception):
                    await self.backend.release(poller.watch.key)
        self.settings, self.pollers = config.changes, tuple(pollers)
        self.watched = _watched(pollers)
        self.hub.resize(max_subscriptions=self.settings.max_subscriptions,
                        queue_size=self.settings.queue_size,
                        max_per_owner=self.settings.max_subscriptions_per_client)
        self.hub.end_where(self._names_unwatched, "a source this subscription names was "
                           "removed from the gateway's configuration", ErrorCode.SOURCE_REMOVED)
        if self._listening is not None:
            self._polling = [asyncio.create_task(poller.run()) for poller in self.pollers]

    def end_subscriptions(self) -> None:
        """End every subscription with SHUTTING_DOWN, and refuse new ones the same way: the
        process is about to stop (a drain began, or the server shuts down), and a client that
        reconnects elsewhere with its last event id misses nothing."""
        self.closing = True
        self.hub.end_all(SHUTDOWN_MESSAGE, ErrorCode.SHUTTING_DOWN)

    def _names_unwatched(self, subscription: Subscription) -> bool:
        named = subscription.sources
        return named is not None and not named <= self.watched.get(subscription.topic,
                                                                   frozenset())

    async def aclose(self) -> None:
        """Stop polling, give up leases and end every subscription with SHUTTING_DOWN."""
        self.end_subscriptions()
        await _cancel([*self._polling, *([self._listening] if self._listening else [])])
        self._polling, self._listening = [], None
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


def backend_key(config: Config) -> tuple[object, ...]:
    """What a feed's backend is made from."""
    changes = config.changes
    return (config.cache, changes.lease_seconds, changes.replay_events, changes.state_dir)


def _pollers(config: Config, adapters: Mapping[str, SourceAdapter], backend: Backend, *,
             clock: Clock, metrics: Metrics | None) -> list[Poller]:
    watches = [watch for adapter in adapters.values() for watch in watches_of(adapter)]
    return [Poller(watch, backend, settings=config.changes, clock=clock, metrics=metrics)
            for watch in watches if watch.interval is not None]


def _watched(pollers: Sequence[Poller]) -> dict[Topic, frozenset[str]]:
    return {topic: frozenset(p.watch.source for p in pollers if p.watch.topic is topic)
            for topic in Topic}


async def _cancel(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
