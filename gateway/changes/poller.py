"""One poller per watched source and topic: it asks the source what changed since its
watermark where the upstream can say so, compares the whole listing where it cannot (and, on
the longer ``full_poll_interval_seconds``, to find deletions), and publishes the differences.

A poll reads fresh answers through the source's usual stack (breaker, retries, concurrency
limit, metrics), bypassing the upstream cache and refreshing it. Its state — the watermark and
the last known state of every item — is committed with its events (:mod:`.backends`), so a
restart, or another process taking the lease over, continues from it: a change made meanwhile
is announced once. The first poll ever takes a baseline and announces nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.changes.backends import STORE_ERRORS, Backend, PollState
from gateway.changes.events import (
    ChangeEvent,
    ChangeType,
    Record,
    Topic,
    decode_record,
    encode_record,
)
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import ChangeSettings
from gateway.errors import GatewayError
from gateway.observability.metrics import Metrics
from gateway.scope import RequestScope
from gateway.sources.base import SourceAdapter
from gateway.sources.records import Capability, GroupRecord, GroupStatus

__all__ = ["Poller", "Watch", "diff", "watches_of"]

logger = logging.getLogger("gateway.changes")

# A full comparison every this many polls unless full_poll_interval_seconds says otherwise.
FULL_EVERY = 10
# The longest a poll may take (its upstream reads share the source's usual timeouts).
POLL_DEADLINE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class Watch:
    """What a poller reads: one topic of one source, through its adapter."""

    adapter: SourceAdapter
    topic: Topic

    @property
    def source(self) -> str:
        return self.adapter.name

    @property
    def key(self) -> str:
        return f"{self.adapter.name}:{self.topic.value}"

    @property
    def interval(self) -> float | None:
        return self.adapter.config.poll_interval_seconds

    @property
    def full_interval(self) -> float:
        configured = self.adapter.config.full_poll_interval_seconds
        return configured if configured is not None else FULL_EVERY * (self.interval or 0.0)

    async def changed_since(self, since: datetime, scope: RequestScope) -> Sequence[Record] | None:
        """What changed at or after ``since``; None where the upstream cannot say."""
        if self.topic is Topic.GROUPS:
            return await self.adapter.groups_changed_since(since, scope)
        return await self.adapter.products_changed_since(since, scope)

    async def listing(self, scope: RequestScope) -> Sequence[Record]:
        """Everything the source has of the topic (within its scan_limit)."""
        if self.topic is Topic.GROUPS:
            return await self.adapter.group_table(scope)
        return await self.adapter.product_listing(scope)


def watches_of(adapter: SourceAdapter) -> list[Watch]:
    """The topics a source has: groups if it lists them, products if it has any."""
    capabilities = set(adapter.capabilities)
    topics = []
    if Capability.PRODUCT_GROUPS in capabilities:
        topics.append(Topic.GROUPS)
    if capabilities & {Capability.PRODUCTS, Capability.GROUP_PRODUCTS}:
        topics.append(Topic.PRODUCTS)
    return [Watch(adapter, topic) for topic in topics]


def _live(record: Record) -> bool:
    """A CareCloud group in ``state`` 0 is deleted while still listed."""
    return not (isinstance(record, GroupRecord) and record.status is GroupStatus.DELETED)


def diff(watch: Watch, state: PollState | None, records: Sequence[Record], *, full: bool,
         observed_at: datetime) -> tuple[list[ChangeEvent], PollState]:
    """The events between what was known and ``records``, and the state after them.

    ``full``: ``records`` is the whole listing, so a known id missing from it was deleted.
    Without a ``state`` (the first poll) the listing is the baseline: no events.
    """
    known = dict(state.known) if state is not None else {}
    events: list[ChangeEvent] = []

    def announce(change: ChangeType, record: Record) -> None:
        if state is not None:
            events.append(ChangeEvent(watch.topic, change, watch.source, record, observed_at))

    seen: set[str] = set()
    for record in records:
        key, text = record.id, encode_record(record).decode()
        seen.add(key)
        before = known.get(key)
        if before == text:
            continue
        known[key] = text
        was_live = before is not None and _live(decode_record(watch.topic, before.encode()))
        if _live(record):
            announce(ChangeType.UPDATED if was_live else ChangeType.CREATED, record)
        elif was_live:
            announce(ChangeType.DELETED, record)
    if full:
        for key in [key for key in known if key not in seen]:
            last = decode_record(watch.topic, known.pop(key).encode())
            if _live(last):
                announce(ChangeType.DELETED, last)
    watermark = _latest(records, state.watermark if state is not None else None)
    full_at = observed_at.timestamp() if full else (state.full_at if state else 0.0)
    return events, PollState(watermark=watermark, full_at=full_at, known=known)


def _latest(records: Sequence[Record], watermark: str | None) -> str | None:
    times = [r.updated_at for r in records if r.updated_at is not None]
    if watermark is not None:
        times.append(datetime.fromisoformat(watermark))
    return max(times).isoformat() if times else None


class Poller:
    """Polls one :class:`Watch` every ``interval`` while this process holds its lease."""

    def __init__(self, watch: Watch, backend: Backend, *, settings: ChangeSettings,
                 clock: Clock = SYSTEM_CLOCK, metrics: Metrics | None = None) -> None:
        self.watch = watch
        self.metrics = metrics
        self.backend = backend
        self.settings = settings
        self.clock = clock
        self.polls = 0  # polls made by this process (tests and logs)
        self._state: PollState | None = None  # ours while we hold the lease
        self._holding = False

    async def run(self) -> None:
        interval = self.watch.interval or 0.0
        while True:
            # Waiting first gives a restarted process's subscribers time to reconnect before
            # what changed while it was down is announced.
            await self.clock.sleep(interval)
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except STORE_ERRORS as exc:  # Redis away (a failover): the next poll tries again
                self._count("failed")
                logger.warning("change poll skipped: the store did not answer (%s)",
                               type(exc).__name__, extra={"source": self.watch.source})
            except GatewayError as exc:  # the source failed: the next poll tries again
                self._count("failed")
                logger.warning("change poll failed", extra={"source": self.watch.source,
                                                            "topic": self.watch.topic.value,
                                                            "code": exc.code.value})
            except Exception:
                self._count("failed")
                logger.exception("change poll failed", extra={"source": self.watch.source})

    async def step(self) -> list[ChangeEvent]:
        """Poll once if this process holds (or takes) the lease; the events published."""
        if not await self.backend.claim(self.watch.key):
            self._holding, self._state = False, None
            return []
        if not self._holding:  # newly ours: another process may have moved the state on
            self._holding, self._state = True, await self.backend.load(self.watch.key)
            return await self.poll(full=True)
        return await self.poll(full=False)

    async def poll(self, *, full: bool) -> list[ChangeEvent]:
        state = self._state
        now = self.clock.wall()
        full = full or state is None or now - state.full_at >= self.watch.full_interval
        scope = RequestScope(request_id=f"changes:{self.watch.key}", refresh=True,
                             deadline=self.clock.monotonic() + POLL_DEADLINE_SECONDS)
        records: Sequence[Record] | None = None
        if not full and state is not None and state.watermark is not None:
            records = await self.watch.changed_since(datetime.fromisoformat(state.watermark),
                                                     scope)
        if records is None:
            full, records = True, await self.watch.listing(scope)
        if len(records) > self.settings.max_snapshot_items:
            logger.warning("change poll skipped: more items than max_snapshot_items",
                           extra={"source": self.watch.source, "items": len(records)})
            return []
        events, after = diff(self.watch, state, records, full=full,
                             observed_at=datetime.fromtimestamp(now, UTC))
        self.polls += 1
        if await self.backend.commit(self.watch.key, after, events):
            self._state = after
            self._count("ok", events)
            return events
        self._holding, self._state = False, None  # the lease went to another process
        self._count("lost")
        return []

    def _count(self, outcome: str, events: Sequence[ChangeEvent] = ()) -> None:
        if self.metrics is None:
            return
        source, topic = self.watch.source, self.watch.topic.value
        self.metrics.change_polls.labels(source, topic, outcome).inc()
        for event in events:
            self.metrics.change_events.labels(source, topic, event.change.value).inc()
