"""Subscriptions over real sockets: gateways over the session's emulators with every source
watched (``poll_interval_seconds`` 3600: each poller takes its baseline at start and then
waits), events published straight to the gateway's change feed (``ChangeFeed.announce``, on
the server's own loop) built from the sources' real records, and third-party clients: the
``gql`` package's WebSocket transport (graphql-transport-ws) and ``httpx-sse`` for
Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.websockets import WebsocketsTransport
from httpx_sse import ServerSentEvent, connect_sse

from gateway.changes.events import ChangeEvent, ChangeType, Record, Topic
from gateway.changes.feed import ChangeFeed
from gateway.config import Config
from gateway.demo import demo_config
from gateway.edge.app import GatewayApp, create_app
from gateway.edge.serving import ServerThread
from gateway.scope import RequestScope
from gateway.sources.records import GroupRecord, ProductRecord
from tests.conftest import UNCACHED, RunningEmulator

Emulators = dict[str, RunningEmulator]
Json = dict[str, Any]
WATCHED = {**UNCACHED, "poll_interval_seconds": 3600}
WAIT_SECONDS = 10.0
T = TypeVar("T")
# The WebSocket subprotocol of a raw connection (gql's transport negotiates its own).
PROTOCOL = websockets.Subprotocol("graphql-transport-ws")

GROUP_CHANGES = """subscription ($filter: ChangeFilter, $after: String) {
  productGroupChanged(filter: $filter, after: $after) {
    change eventId observedAt source { id } node { id name upstreamId parent { name } }
  }
}"""
PRODUCT_CHANGES = """subscription ($filter: ChangeFilter, $after: String) {
  productChanged(filter: $filter, after: $after) {
    change eventId observedAt source { id } node { id name sku }
  }
}"""


@dataclass
class Gateway:
    app: GatewayApp
    servers: ServerThread

    @property
    def url(self) -> str:
        return self.servers.urls["gateway"]

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws_url(self) -> str:
        return "ws" + self.graphql_url.removeprefix("http")

    @property
    def feed(self) -> ChangeFeed:
        feed: ChangeFeed = self.app.state.changes
        return feed

    def subscribers(self) -> int:
        return len(self.feed.hub)

    def wait_subscribers(self, count: int) -> None:
        """Until the hub holds ``count`` subscriptions (polled, within seconds)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while self.subscribers() != count:
            assert time.monotonic() < deadline, \
                f"{self.subscribers()} subscriptions, not {count}"
            time.sleep(0.01)

    def groups(self, source: str) -> list[GroupRecord]:
        adapter = self.app.state.runtime.adapters[source]
        return list(self.servers.run(adapter.group_table(RequestScope())))

    def products(self, source: str) -> list[ProductRecord]:
        adapter = self.app.state.runtime.adapters[source]
        products: list[ProductRecord] = self.servers.run(adapter.product_listing(RequestScope()))
        return products

    def announce(self, *events: ChangeEvent) -> list[str]:
        """Publish ``events`` as a poller would; their event ids."""
        async def publish() -> list[ChangeEvent]:
            await self.feed.announce(list(events))
            return await self.feed.backend.replay("0-0")

        return [event.id for event in self.servers.run(publish())[-len(events):]]


def event(record: Record, change: ChangeType = ChangeType.UPDATED) -> ChangeEvent:
    topic = Topic.GROUPS if isinstance(record, GroupRecord) else Topic.PRODUCTS
    return ChangeEvent(topic, change, record.source.id, record, datetime.now(UTC))


def gateway_config(emulators: Emulators, **sections: Any) -> Config:
    """The demo's configuration, every source watched, with ``sections`` replaced."""
    base = demo_config({kind: e.url for kind, e in emulators.items()}, defaults=WATCHED)
    update: dict[str, Any] = {"server": base.server.model_copy(update={"access_log": False})}
    for name, values in sections.items():
        section = getattr(base, name)
        update[name] = type(section).model_validate({**section.model_dump(), **values})
    return base.model_copy(update=update)


@contextmanager
def running(config: Config) -> Iterator[Gateway]:
    app = create_app(config)
    with ServerThread({"gateway": app}) as servers:
        yield Gateway(app, servers)


@pytest.fixture(scope="module")
def gateway(emulator_servers: Emulators) -> Iterator[Gateway]:
    """A gateway with the default limits, shared by a module's tests (each ends what it
    subscribed)."""
    with running(gateway_config(emulator_servers)) as gateway:
        yield gateway


@pytest.fixture
def start(emulator_servers: Emulators) -> Iterator[Callable[..., Gateway]]:
    """``start(changes={"queue_size": 2})``: a gateway of its own, configured so."""
    with ExitStack() as stack:
        yield lambda **sections: stack.enter_context(
            running(gateway_config(emulator_servers, **sections)))


@asynccontextmanager
async def ws_session(gateway: Gateway, *, init_payload: Json | None = None,
                     headers: dict[str, str] | None = None
                     ) -> AsyncIterator[AsyncClientSession]:
    """A gql session over the gateway's WebSocket (graphql-transport-ws)."""
    transport = WebsocketsTransport(url=gateway.ws_url, init_payload=init_payload or {},
                                    headers=headers, ack_timeout=WAIT_SECONDS)
    async with Client(transport=transport) as session:
        yield session


def request(query: str, **variables: Any) -> GraphQLRequest:
    return GraphQLRequest(query, variable_values=variables)


@contextmanager
def sse(gateway: Gateway | str, query: str, *, variables: Json | None = None,
        headers: dict[str, str] | None = None, client: httpx.Client | None = None
        ) -> Iterator[Iterator[ServerSentEvent]]:
    """The events of a GraphQL-over-SSE POST (httpx-sse) to a gateway, or a URL."""
    url = gateway if isinstance(gateway, str) else gateway.graphql_url
    own = client is None
    client = client or httpx.Client(timeout=WAIT_SECONDS)
    try:
        with connect_sse(client, "POST", url,
                         json={"query": query, "variables": variables},
                         headers=dict(headers or {})) as source:
            assert source.response.status_code == 200, source.response.read()
            yield source.iter_sse()
    finally:
        if own:
            client.close()


async def within(awaitable: Awaitable[T]) -> T:
    """``awaitable``'s result, or a failure after seconds (a stream that stays quiet)."""
    return await asyncio.wait_for(awaitable, WAIT_SECONDS)


async def subscribed(gateway: Gateway, count: int) -> None:
    """Until the hub holds ``count`` subscriptions, this loop free to send what makes them."""
    await asyncio.to_thread(gateway.wait_subscribers, count)


async def hears_one_event(gateway: Gateway, session: AsyncClientSession, group: Record) -> str:
    """One group subscription over ``session`` (the only one open) hears one announced change
    of ``group`` and ends; the event id it heard, which is the one announced."""
    stream = session.subscribe(request(GROUP_CHANGES))
    first = asyncio.ensure_future(anext(stream))
    await subscribed(gateway, 1)
    [announced] = gateway.announce(event(group))
    assert (await within(first))["productGroupChanged"]["eventId"] == announced
    await stream.aclose()
    return str(announced)
