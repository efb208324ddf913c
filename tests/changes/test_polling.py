"""Pollers against the emulators over real sockets: each source's changes are found the way the
README says (one newest-first page where the upstream sorts by change time, whole listings
where it cannot), announced once each, survive a restart, and refresh the upstream cache.
Polls are stepped by hand; the clock they compare full-listing intervals on is moved."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.changes.backends import MemoryBackend
from gateway.changes.events import ChangeEvent, Topic
from gateway.changes.poller import Poller, Watch
from gateway.config import Config
from gateway.demo import demo_config
from gateway.edge.runtime import Runtime
from gateway.edge.serving import ServerThread
from gateway.emulators import KINDS, create_emulator
from gateway.emulators.changes import EmulatorData
from gateway.errors import GatewayError
from gateway.scope import RequestScope
from tests.clock import ManualClock

FULL_EVERY = 60.0  # seconds of the manual clock between whole-listing comparisons


class BetweenPages:
    """An emulator as served: a change armed here is made once, just before the answer to the
    next request for a list's first page leaves (the answer is the list before it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.armed: Callable[[], object] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope["query_string"].decode()) if scope["type"] == "http" else {}
        if query.get("page", query.get("offset")) not in (["1"], ["0"]):
            await self.app(scope, receive, send)
            return

        async def change_first(message: Message) -> None:
            change = self.armed
            if message["type"] == "http.response.start" and change is not None:
                self.armed = None
                change()
            await send(message)

        await self.app(scope, receive, change_first)


@dataclass
class Upstreams:
    urls: dict[str, str]
    data: dict[str, EmulatorData]
    apps: dict[str, object]
    served: dict[str, BetweenPages]

    def requests(self, kind: str) -> int:
        return len(self.apps[kind].state.log)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    """Emulators of this module's own: their data changes, the session's must not."""
    apps = {kind: create_emulator(kind) for kind in KINDS}
    served = {kind: BetweenPages(app) for kind, app in apps.items()}
    with ServerThread(dict(served)) as servers:
        yield Upstreams(servers.urls, {k: a.state.data for k, a in apps.items()},
                        dict(apps), served)


@pytest.fixture
def config(upstreams: Upstreams) -> Iterator[Config]:
    for data in upstreams.data.values():
        data.reset()
    yield demo_config(upstreams.urls, defaults={"poll_interval_seconds": 1,
                                                "full_poll_interval_seconds": FULL_EVERY})


@pytest.fixture
async def runtime(config: Config) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(config)
    yield runtime
    await runtime.aclose()


class Polling:
    """A poller of one source's topic, stepped by the test, and what it announced."""

    def __init__(self, runtime: Runtime, source: str, topic: Topic, *, state_dir: str | None,
                 manual: ManualClock) -> None:
        self.backend = MemoryBackend(state_dir=state_dir, replay_events=100)
        self.manual = manual
        self.poller = Poller(Watch(runtime.adapters[source], topic), self.backend,
                             settings=runtime.config.changes, clock=manual.clock)

    async def step(self, *, full: bool = False) -> list[tuple[str, str | None]]:
        if full:
            self.manual.advance(FULL_EVERY)
        events: list[ChangeEvent] = await self.poller.step()
        return [(e.change.value, e.record.name) for e in events]


# (source, topic, whether its creations and updates are found without a whole listing)
CASES = [("carecloud", Topic.GROUPS), ("joptic", Topic.GROUPS), ("axim", Topic.GROUPS),
         ("axim", Topic.PRODUCTS), ("comestri", Topic.PRODUCTS)]


def create(data: EmulatorData, topic: Topic, name: str) -> str:
    if topic is Topic.GROUPS:
        return data.create_group(name=name)
    if data.kind == "axim":
        return data.create_product(name=name, group_id=data.group_ids()[0])
    return data.create_product(name=name)


def update(data: EmulatorData, topic: Topic, item: str, name: str) -> None:
    if topic is Topic.GROUPS:
        data.update_group(item, name=name)
    else:
        data.update_product(item, name=name)


def delete(data: EmulatorData, topic: Topic, item: str) -> None:
    if topic is Topic.GROUPS:
        data.delete_group(item)
    else:
        data.delete_product(item)


@pytest.mark.parametrize(("source", "topic"), CASES, ids=[f"{s}-{t.value}" for s, t in CASES])
async def test_each_change_is_announced_once(upstreams: Upstreams, runtime: Runtime,
                                             source: str, topic: Topic,
                                             manual: ManualClock) -> None:
    data = upstreams.data[source]
    polling = Polling(runtime, source, topic, state_dir=None, manual=manual)
    assert await polling.step() == []  # the baseline
    item = create(data, topic, "Change feed test")
    assert await polling.step() == [("CREATED", "Change feed test")]
    assert await polling.step() == []
    update(data, topic, item, "Change feed test, renamed")
    assert await polling.step() == [("UPDATED", "Change feed test, renamed")]
    delete(data, topic, item)
    # CareCloud marks a deletion (state 0) where the newest-first page shows it; an id that
    # disappears is found by the next whole-listing comparison.
    full = source != "carecloud"
    assert await polling.step(full=full) == [("DELETED", "Change feed test, renamed")]
    assert await polling.step(full=True) == []


@pytest.mark.parametrize(("source", "requests"), [("carecloud", 1), ("joptic", 1),
                                                   ("comestri", 1)])
async def test_where_the_upstream_sorts_by_change_a_quiet_poll_costs_one_request(
        upstreams: Upstreams, runtime: Runtime, source: str, requests: int,
        manual: ManualClock) -> None:
    topic = Topic.PRODUCTS if source == "comestri" else Topic.GROUPS
    polling = Polling(runtime, source, topic, state_dir=None, manual=manual)
    await polling.step()
    before = upstreams.requests(source)
    assert await polling.step() == []
    assert upstreams.requests(source) - before == requests


@pytest.mark.parametrize("source", ["joptic", "axim"])  # CareCloud reads all in one call
async def test_a_group_created_between_the_pages_of_a_whole_listing_is_no_deletion(
        upstreams: Upstreams, runtime: Runtime, source: str, manual: ManualClock) -> None:
    # Newest first, a group created after the first page is read pushes the oldest one past
    # the end of the second: a listing stitched from both would lack it.
    polling = Polling(runtime, source, Topic.GROUPS, state_dir=None, manual=manual)
    await polling.step()
    upstreams.served[source].armed = lambda: upstreams.data[source].create_group(
        name="Made between the pages")
    assert await polling.step(full=True) == [("CREATED", "Made between the pages")]
    assert upstreams.served[source].armed is None  # the change was made mid-listing
    assert await polling.step(full=True) == []


async def test_a_restart_resumes_from_the_stored_state(upstreams: Upstreams, runtime: Runtime,
                                                       tmp_path: Path,
                                                       manual: ManualClock) -> None:
    data = upstreams.data["joptic"]
    first = Polling(runtime, "joptic", Topic.GROUPS, state_dir=str(tmp_path), manual=manual)
    await first.step()
    victim = data.group_ids()[0]
    # While no gateway runs: one group is created, another deleted.
    data.create_group(name="Made while down")
    data.delete_group(victim)
    restarted = Polling(runtime, "joptic", Topic.GROUPS, state_dir=str(tmp_path), manual=manual)
    changes = await restarted.step()  # newly holding the lease: a whole comparison
    assert sorted(change for change, _ in changes) == ["CREATED", "DELETED"]
    assert ("CREATED", "Made while down") in changes
    assert await restarted.step(full=True) == []


async def test_a_failed_poll_announces_nothing_and_the_next_one_catches_up(
        upstreams: Upstreams, runtime: Runtime, manual: ManualClock) -> None:
    data, app = upstreams.data["carecloud"], upstreams.apps["carecloud"]
    polling = Polling(runtime, "carecloud", Topic.GROUPS, state_dir=None, manual=manual)
    await polling.step()
    data.create_group(name="Made during an outage")
    app.state.faults.set(status=503)  # type: ignore[attr-defined]
    try:
        with pytest.raises(GatewayError):
            await polling.step()
    finally:
        app.state.faults.clear()  # type: ignore[attr-defined]
    assert await polling.step() == [("CREATED", "Made during an outage")]


async def test_a_poll_reads_past_the_upstream_cache_and_refreshes_it(
        upstreams: Upstreams, runtime: Runtime, manual: ManualClock) -> None:
    adapter = runtime.adapters["axim"]
    polling = Polling(runtime, "axim", Topic.GROUPS, state_dir=None, manual=manual)
    await polling.step()
    names = {g.name for g in await adapter.group_table(RequestScope())}  # cached (300 s)
    assert "Fresh from the poll" not in names
    upstreams.data["axim"].create_group(name="Fresh from the poll")
    assert [n for _, n in await polling.step()] == ["Fresh from the poll"]
    requests = upstreams.requests("axim")
    table = await adapter.group_table(RequestScope())
    assert "Fresh from the poll" in {g.name for g in table}  # the poll refreshed the cache
    assert upstreams.requests("axim") == requests


async def test_pollers_run_on_their_interval_while_the_feed_is_started(config: Config,
                                                                        upstreams: Upstreams
                                                                        ) -> None:
    from gateway.changes.feed import ChangeFeed

    runtime = Runtime.build(config)
    feed = ChangeFeed.build(config, runtime.adapters)
    await feed.start()
    try:
        subscription = await feed.subscribe(Topic.GROUPS, sources=frozenset({"joptic"}))
        for _ in range(100):  # the baseline comes after one interval
            if all(p.polls for p in feed.pollers):
                break
            await asyncio.sleep(0.1)
        upstreams.data["joptic"].create_group(name="Seen by a running poller")
        event = await asyncio.wait_for(anext(subscription), timeout=10)
        assert (event.change.value, event.record.name) == ("CREATED", "Seen by a running poller")
    finally:
        await feed.aclose()
        await runtime.aclose()
