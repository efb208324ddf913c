"""The change feed's parts on their own: what a poll announces from two listings, the hub's
bounded queues, and the backends' state, replay and leases (memory, files, a real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.changes.backends import Backend, MemoryBackend, PollState, RedisBackend
from gateway.changes.events import ChangeEvent, ChangeType, Topic, decode_event, encode_event
from gateway.changes.hub import ChangeHub
from gateway.changes.poller import Watch, diff
from gateway.config import SourceKind, parse_config
from gateway.errors import ErrorCode, SubscriptionEnded, SubscriptionRefused
from gateway.sources import build_adapter
from gateway.sources.records import Capability, GroupRecord, GroupStatus, SourceInfo
from tests.clock import ManualClock

INFO = SourceInfo("cc", SourceKind.CARECLOUD, (Capability.PRODUCT_GROUPS,))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def group(upstream_id: str, name: str, *, minutes: int = 0,
          status: GroupStatus = GroupStatus.ACTIVE) -> GroupRecord:
    return GroupRecord(source=INFO, upstream_id=upstream_id, name=name, status=status,
                       updated_at=T0 + timedelta(minutes=minutes))


def watch() -> Watch:
    source = {"name": "cc", "kind": "carecloud", "base_url": "http://127.0.0.1:9", "token": "t",
              "poll_interval_seconds": 5}
    config = parse_config({"server": {"profile": "development"}, "sources": [source]})
    return Watch(build_adapter(config.sources[0]), Topic.GROUPS)


def changes(events: Sequence[ChangeEvent]) -> list[tuple[str, str, str | None]]:
    return [(e.change.value, e.record.upstream_id, e.record.name) for e in events]


def event(upstream_id: str, name: str = "n") -> ChangeEvent:
    return ChangeEvent(Topic.GROUPS, ChangeType.UPDATED, "cc", group(upstream_id, name), T0)


# -- what a poll announces -----------------------------------------------------------------------

def test_the_first_listing_is_a_baseline_and_announces_nothing() -> None:
    events, state = diff(watch(), None, [group("1", "a"), group("2", "b")], full=True,
                         observed_at=T0)
    assert events == []
    assert set(state.known) == {group("1", "a").id, group("2", "b").id}
    assert state.watermark == T0.isoformat()


def test_created_updated_and_deleted_are_announced_once_each() -> None:
    w = watch()
    _, state = diff(w, None, [group("1", "a"), group("2", "b"), group("3", "c")], full=True,
                    observed_at=T0)
    now = [group("1", "a"), group("2", "b2", minutes=5), group("4", "d", minutes=6)]
    events, state = diff(w, state, now, full=True, observed_at=T0)
    assert changes(events) == [("UPDATED", "2", "b2"), ("CREATED", "4", "d"),
                               ("DELETED", "3", "c")]  # the last known state of a deleted one
    assert state.watermark == (T0 + timedelta(minutes=6)).isoformat()
    again, _ = diff(w, state, now, full=True, observed_at=T0)
    assert again == []


def test_a_state_0_group_is_deleted_while_still_listed_and_created_when_back() -> None:
    w = watch()
    _, state = diff(w, None, [group("1", "a")], full=True, observed_at=T0)
    gone = group("1", "a", minutes=1, status=GroupStatus.DELETED)
    events, state = diff(w, state, [gone], full=False, observed_at=T0)
    assert changes(events) == [("DELETED", "1", "a")]
    events, state = diff(w, state, [group("1", "a", minutes=2)], full=False, observed_at=T0)
    assert changes(events) == [("CREATED", "1", "a")]


def test_a_partial_read_finds_no_deletions() -> None:
    w = watch()
    _, state = diff(w, None, [group("1", "a"), group("2", "b")], full=True, observed_at=T0)
    events, state = diff(w, state, [group("2", "b2", minutes=1)], full=False, observed_at=T0)
    assert changes(events) == [("UPDATED", "2", "b2")]
    assert group("1", "a").id in state.known


def test_events_travel_as_json_and_come_back_equal() -> None:
    original = event("7", "Sunglasses")
    assert decode_event(encode_event(original), "5-1") == original.with_id("5-1")


# -- the hub -------------------------------------------------------------------------------------

async def test_a_subscriber_gets_the_events_of_its_topic_and_sources_in_order() -> None:
    hub = ChangeHub(max_subscriptions=10, queue_size=10)
    mine = hub.join(Topic.GROUPS, frozenset({"cc"}))
    other = hub.join(Topic.GROUPS, frozenset({"elsewhere"}))
    for number in range(3):
        hub.deliver(event(str(number)).with_id(f"1-{number}"))
    assert [(await anext(mine)).record.upstream_id for _ in range(3)] == ["0", "1", "2"]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(anext(other), 0.05)


async def test_a_subscriber_that_falls_behind_is_ended_and_leaves_the_hub() -> None:
    hub = ChangeHub(max_subscriptions=10, queue_size=2)
    slow = hub.join(Topic.GROUPS, None)
    for number in range(3):
        hub.deliver(event(str(number)).with_id(f"1-{number}"))
    assert len(hub) == 0
    with pytest.raises(SubscriptionEnded) as ended:
        await anext(slow)
    assert ended.value.code is ErrorCode.SLOW_SUBSCRIBER


async def test_the_hub_refuses_past_its_limit_and_ends_everyone_on_shutdown() -> None:
    hub = ChangeHub(max_subscriptions=1, queue_size=2)
    first = hub.join(Topic.GROUPS, None)
    with pytest.raises(SubscriptionRefused):
        hub.join(Topic.PRODUCTS, None)
    hub.end_all("bye", ErrorCode.SHUTTING_DOWN)
    with pytest.raises(SubscriptionEnded) as ended:
        await anext(first)
    assert ended.value.code is ErrorCode.SHUTTING_DOWN
    hub.join(Topic.PRODUCTS, None)  # room again


async def test_a_replayed_event_is_not_delivered_twice_when_it_also_arrives_live() -> None:
    hub = ChangeHub(max_subscriptions=1, queue_size=10)
    subscription = hub.join(Topic.GROUPS, None)
    subscription.replayed([event("1").with_id("5-0"), event("2").with_id("6-0")])
    hub.deliver(event("2").with_id("6-0"))
    hub.deliver(event("3").with_id("7-0"))
    got = [(await anext(subscription)).id for _ in range(3)]
    assert got == ["5-0", "6-0", "7-0"]


async def test_live_events_met_while_a_replay_is_read_come_after_it_and_once() -> None:
    hub = ChangeHub(max_subscriptions=1, queue_size=10)
    subscription = hub.join(Topic.GROUPS, None)
    subscription.replaying()
    hub.deliver(event("2").with_id("6-0"))  # committed after the reconnect, before the read
    hub.deliver(event("3").with_id("7-0"))
    subscription.replayed([event("1").with_id("5-0"), event("2").with_id("6-0")])
    got = [(await anext(subscription)).id for _ in range(3)]
    assert got == ["5-0", "6-0", "7-0"]


async def test_a_subscriber_whose_held_events_overflow_while_replaying_is_dropped() -> None:
    hub = ChangeHub(max_subscriptions=1, queue_size=2)
    subscription = hub.join(Topic.GROUPS, None)
    subscription.replaying()
    for n in range(3):
        hub.deliver(event(str(n)).with_id(f"{n + 1}-0"))
    with pytest.raises(SubscriptionEnded) as ended:
        await anext(subscription)
    assert ended.value.code is ErrorCode.SLOW_SUBSCRIBER


# -- backends ------------------------------------------------------------------------------------

async def backend_round_trip(backend: Backend, other: Backend) -> None:
    """State and events commit together; every listener hears them; a replay after an id
    returns what followed it; a second process is refused the lease while it is held."""
    heard: list[str] = []
    listening = asyncio.create_task(other.listen(lambda e: heard.append(e.record.upstream_id)))
    await asyncio.sleep(0.1)  # the listener is reading
    assert await backend.claim("cc:groups")
    state = PollState(watermark=T0.isoformat(), full_at=1.0, known={"x": "{}"})
    assert await backend.commit("cc:groups", state, [event("1"), event("2")])
    loaded = await backend.load("cc:groups")
    assert loaded is not None and loaded.known == {"x": "{}"}
    for _ in range(100):
        if len(heard) == 2:
            break
        await asyncio.sleep(0.05)
    assert heard == ["1", "2"]
    kept = await backend.replay("0-0")
    assert [e.record.upstream_id for e in await backend.replay(kept[0].id)] == ["2"]
    listening.cancel()


async def test_the_memory_backend_keeps_state_in_files_across_restarts(tmp_path: Path) -> None:
    clock = ManualClock().clock
    backend = MemoryBackend(state_dir=str(tmp_path), replay_events=10, clock=clock)
    await backend_round_trip(backend, backend)
    restarted = MemoryBackend(state_dir=str(tmp_path), replay_events=10, clock=clock)
    loaded = await restarted.load("cc:groups")
    assert loaded is not None and loaded.watermark == T0.isoformat()
    (tmp_path / "cc.groups.json").write_text("{not json")
    assert await MemoryBackend(state_dir=str(tmp_path), replay_events=10).load("cc:groups") \
        is None  # unreadable: a new baseline


async def test_redis_backends_share_one_lease_stream_and_state(redis_url: str) -> None:
    one = RedisBackend(redis_url, namespace="t-core", lease_seconds=1, replay_events=100)
    two = RedisBackend(redis_url, namespace="t-core", lease_seconds=1, replay_events=100)
    try:
        await backend_round_trip(one, two)
        assert not await two.claim("cc:groups")  # one holds it
        assert not await two.commit("cc:groups", PollState(), [event("9")])  # fenced
        assert [e.record.upstream_id for e in await two.replay("0-0")] == ["1", "2"]
        await one.release("cc:groups")
        assert await two.claim("cc:groups")
        assert not await one.claim("cc:groups")
    finally:
        await one.aclose()
        await two.aclose()



async def test_a_quiet_redis_stream_is_read_on_without_timeouts(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A blocking read of the event stream ends before the client's socket timeout (redis-py's
    default, or the URL's: 1 s here), so a quiet stream is no failure: no warning, and an event
    after the quiet spell arrives at once."""
    quiet = RedisBackend(f"{redis_url}?socket_timeout=1", namespace="t-quiet", lease_seconds=1,
                         replay_events=10)
    heard: list[str] = []
    listening = asyncio.create_task(quiet.listen(lambda e: heard.append(e.record.upstream_id)))
    try:
        with caplog.at_level("WARNING", logger="gateway.changes"):
            await asyncio.sleep(2.5)  # longer than the socket timeout, nothing published
            assert await quiet.claim("cc:groups")
            assert await quiet.commit("cc:groups", PollState(), [event("1")])
            for _ in range(40):  # a retry after a failed read would take a second
                if heard:
                    break
                await asyncio.sleep(0.025)
        assert heard == ["1"]
        assert not [r for r in caplog.records if "unreadable" in r.getMessage()]
    finally:
        listening.cancel()
        await quiet.aclose()
