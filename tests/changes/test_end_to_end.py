"""Changes made in each emulator reach subscribers over both transports, once each, within two
poll intervals: real pollers on their timers, emulators of this module's own over real sockets,
and third-party clients — gql's WebSocket transport (graphql-transport-ws) and httpx-sse."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from httpx_sse import aconnect_sse
from starlette.applications import Starlette

from gateway.changes.feed import ChangeFeed
from gateway.demo import demo_config
from gateway.edge.app import GatewayApp, create_app
from gateway.edge.serving import ServerThread
from gateway.emulators import KINDS, create_emulator
from gateway.emulators.changes import EmulatorData

INTERVAL = 0.5  # seconds between polls, and between whole-listing comparisons
# "Within two poll intervals", plus what a loaded two-core test machine adds.
ARRIVAL_SECONDS = 2 * INTERVAL + 3.0

# The fields every change has, through the Change interface.
GROUPS = """subscription ($sources: [ID!]) { productGroupChanged(filter: {sources: $sources}) {
  ...Changed node { id name } } }
fragment Changed on Change { change eventId source { id } }"""
PRODUCTS = """subscription ($sources: [ID!]) { productChanged(filter: {sources: $sources}) {
  change eventId source { id } node { id name } } }"""


@dataclass
class Stack:
    gateway: GatewayApp
    servers: ServerThread
    data: dict[str, EmulatorData]
    emulators: dict[str, Starlette]

    @property
    def url(self) -> str:
        return self.servers.urls["gateway"]

    @property
    def feed(self) -> ChangeFeed:
        feed: ChangeFeed = self.gateway.state.changes
        return feed


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    emulators = {kind: create_emulator(kind) for kind in KINDS}
    with ServerThread(dict(emulators)) as upstreams:
        config = demo_config(upstreams.urls, defaults={
            "poll_interval_seconds": INTERVAL, "full_poll_interval_seconds": INTERVAL})
        gateway = create_app(config)
        with ServerThread({"gateway": gateway}) as servers:
            yield Stack(gateway, servers, {k: e.state.data for k, e in emulators.items()},
                        emulators)


Collected = list[tuple[str, str, float]]  # (change, name, when it arrived)


async def over_websocket(url: str, query: str, source: str, into: Collected) -> None:
    transport = WebsocketsTransport(url="ws" + url.removeprefix("http") + "/graphql")
    async with Client(transport=transport) as session:
        request = GraphQLRequest(query, variable_values={"sources": [source]})
        async for result in session.subscribe(request):
            change = next(iter(result.values()))
            into.append((change["change"], change["node"]["name"], time.monotonic()))


async def over_sse(url: str, query: str, source: str, into: Collected) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client:
        body = {"query": query, "variables": {"sources": [source]}}
        async with aconnect_sse(client, "POST", f"{url}/graphql", json=body) as events:
            async for sse in events.aiter_sse():
                if sse.event == "next":
                    change = next(iter(json.loads(sse.data)["data"].values()))
                    into.append((change["change"], change["node"]["name"], time.monotonic()))


async def subscribers(stack: Stack, count: int) -> None:
    """Until the gateway holds ``count`` subscriptions (within seconds)."""
    deadline = time.monotonic() + 20
    while len(stack.feed.hub) != count:
        assert time.monotonic() < deadline, f"{len(stack.feed.hub)} subscriptions, not {count}"
        await asyncio.sleep(0.02)


async def arrives(lists: list[Collected], count: int, since: float) -> None:
    """Until every list holds ``count`` events; each new one within ARRIVAL_SECONDS."""
    while not all(len(events) >= count for events in lists):
        assert time.monotonic() - since < ARRIVAL_SECONDS + 5, \
            f"not arrived: {lists}"
        await asyncio.sleep(0.05)
    for events in lists:
        assert events[count - 1][2] - since <= ARRIVAL_SECONDS, events


CASES = [("carecloud", "groups"), ("joptic", "groups"), ("axim", "groups"),
         ("axim", "products"), ("comestri", "products")]


@pytest.mark.parametrize(("source", "topic"), CASES, ids=[f"{s}-{t}" for s, t in CASES])
async def test_created_updated_deleted_reach_both_transports_once_each(
        stack: Stack, source: str, topic: str) -> None:
    data = stack.data[source]
    query = GROUPS if topic == "groups" else PRODUCTS
    websocket: Collected = []
    sse: Collected = []
    await subscribers(stack, 0)  # the previous test's have left
    tasks = [asyncio.create_task(over_websocket(stack.url, query, source, websocket)),
             asyncio.create_task(over_sse(stack.url, query, source, sse))]
    try:
        await subscribers(stack, 2)
        await asyncio.sleep(2 * INTERVAL)  # the pollers have their baseline

        async def step(count: int, change: Callable[[], Any]) -> None:
            since = time.monotonic()
            await asyncio.to_thread(change)
            await arrives([websocket, sse], count, since)

        name = f"End to end {source} {topic}"
        since = time.monotonic()
        item = await created(data, topic, name)
        await arrives([websocket, sse], 1, since)
        await step(2, lambda: update(data, topic, item, name + ", renamed"))
        await step(3, lambda: delete(data, topic, item))
        await asyncio.sleep(3 * INTERVAL)  # more polls: nothing more may come
        expected = [("CREATED", name), ("UPDATED", name + ", renamed"),
                    ("DELETED", name + ", renamed")]
        for events in (websocket, sse):
            assert [(change, got) for change, got, _ in events] == expected
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def created(data: EmulatorData, topic: str, name: str) -> str:
    def make() -> str:
        if topic == "groups":
            return data.create_group(name=name)
        if data.kind == "axim":
            return data.create_product(name=name, group_id=data.group_ids()[0])
        return data.create_product(name=name)

    return await asyncio.to_thread(make)


def update(data: EmulatorData, topic: str, item: str, name: str) -> None:
    (data.update_group if topic == "groups" else data.update_product)(item, name=name)


def delete(data: EmulatorData, topic: str, item: str) -> None:
    (data.delete_group if topic == "groups" else data.delete_product)(item)


async def test_fifty_subscribers_cost_the_upstream_what_one_does(stack: Stack) -> None:
    """One poller per source and kind: the requests per poll do not grow with subscribers."""
    log = stack.emulators["joptic"].state.log
    poller = next(p for p in stack.feed.pollers if p.watch.key == "joptic:groups")

    async def requests_per_poll() -> float:
        polls, requests = poller.polls, len(log)
        await asyncio.sleep(8 * INTERVAL)
        return (len(log) - requests) / max(poller.polls - polls, 1)

    one: Collected = []
    await subscribers(stack, 0)
    tasks = [asyncio.create_task(over_sse(stack.url, GROUPS, "joptic", one))]
    try:
        alone = await requests_per_poll()
        many: list[Collected] = [[] for _ in range(49)]
        tasks += [asyncio.create_task(over_sse(stack.url, GROUPS, "joptic", into))
                  for into in many]
        await subscribers(stack, 50)
        crowded = await requests_per_poll()
        # Equal but for a poll in flight at either end of a measurement (3 requests at most).
        assert alone > 0 and abs(crowded - alone) <= 1
        await asyncio.to_thread(stack.data["joptic"].create_group, name="For fifty")
        deadline = time.monotonic() + ARRIVAL_SECONDS + 5
        while not all(into for into in [one, *many]):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

