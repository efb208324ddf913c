"""What bounds subscriptions and how they end, over both transports: the total limit, client
authentication and rate limits, a subscriber that stops reading, and the gateway stopping."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from gql.transport.exceptions import TransportQueryError
from httpx_sse import ServerSentEvent
from websockets.asyncio.client import ClientConnection

from gateway.changes.events import ChangeEvent
from gateway.edge.websocket import SHUTDOWN_CLOSE
from tests.helpers import error_codes
from tests.leaks import CONFIGURED
from tests.subscriptions.conftest import (
    GROUP_CHANGES,
    PROTOCOL,
    WAIT_SECONDS,
    Gateway,
    Json,
    event,
    hears_one_event,
    request,
    sse,
    subscribed,
    within,
    ws_session,
)

Start = Callable[..., Gateway]
# What a subscriber of the slow-reader tests asks for each event: a few hundred bytes.
WIDE = """subscription { productGroupChanged {
  eventId change observedAt source { id kind capabilities }
  node { id upstreamId name code externalId status storeId createdAt updatedAt productCount }
} }"""


async def raw_socket(gateway: Gateway, **options: Any) -> ClientConnection:
    """A WebSocket speaking graphql-transport-ws by hand (to see its close), acknowledged."""
    connection = await websockets.connect(gateway.ws_url, subprotocols=[PROTOCOL], **options)
    await connection.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await within(connection.recv()))["type"] == "connection_ack"
    return connection


async def subscribe(connection: ClientConnection, query: str, number: int = 1) -> None:
    await connection.send(json.dumps({"id": str(number), "type": "subscribe",
                                      "payload": {"query": query}}))


async def messages_until_complete(connection: ClientConnection) -> list[Json]:
    received: list[Json] = []
    while not received or received[-1]["type"] != "complete":
        received.append(json.loads(await within(connection.recv())))
    return received


async def test_the_total_limit_refuses_on_both_transports(start: Start) -> None:
    gateway = start(changes={"max_subscriptions": 1})
    group = gateway.groups("carecloud")[0]
    with sse(gateway, GROUP_CHANGES) as events:
        gateway.wait_subscribers(1)
        async with ws_session(gateway) as session:
            with pytest.raises(TransportQueryError) as refused:
                await within(anext(session.subscribe(request(GROUP_CHANGES))))
        assert error_codes(refused.value.errors) == ["SUBSCRIPTION_LIMIT"]
        with sse(gateway, GROUP_CHANGES) as second:
            error, complete = list(second)
        assert error_codes(json.loads(error.data)["errors"]) == ["SUBSCRIPTION_LIMIT"]
        assert complete.event == "complete"
        [event_id] = gateway.announce(event(group))
        got = next(events)
        assert got.id == event_id, (got.event, got.data)  # the one admitted goes on
    gateway.wait_subscribers(0)
    async with ws_session(gateway) as session:  # room again
        await hears_one_event(gateway, session, group)


@pytest.fixture
def api_key() -> Iterator[str]:
    key = secrets.token_urlsafe(24)
    CONFIGURED.add(key)  # the session's scan: never logged
    yield key


async def test_authentication_is_required_on_both_transports(start: Start, api_key: str
                                                              ) -> None:
    gateway = start(auth={"required": True, "api_keys": [
        {"client": "dashboard", "sha256": hashlib.sha256(api_key.encode()).hexdigest()}]})
    group = gateway.groups("joptic")[0]
    for payload in ({}, {"X-API-Key": "not-the-key"}):
        async with websockets.connect(gateway.ws_url, subprotocols=[PROTOCOL]) as refused:
            await refused.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(websockets.ConnectionClosed):
                await within(refused.recv())
        assert refused.close_code == 4403
        assert refused.close_reason == "Forbidden"
    answer = httpx.post(gateway.graphql_url, json={"query": GROUP_CHANGES},
                        headers={"Accept": "text/event-stream"}, timeout=WAIT_SECONDS)
    assert answer.status_code == 401
    assert error_codes(answer.json()["errors"]) == ["UNAUTHENTICATED"]
    assert gateway.subscribers() == 0
    # The key in connection_init's payload (a browser cannot set a WebSocket's headers), in
    # the upgrade request's headers, and in the SSE request's.
    async with ws_session(gateway, init_payload={"x-api-key": api_key}) as by_payload, \
            ws_session(gateway, headers={"X-API-Key": api_key}) as by_header:
        streams = [by_payload.subscribe(request(GROUP_CHANGES)),
                   by_header.subscribe(request(GROUP_CHANGES))]
        firsts = [asyncio.ensure_future(anext(stream)) for stream in streams]
        with sse(gateway, GROUP_CHANGES, headers={"X-API-Key": api_key}) as events:
            await subscribed(gateway, 3)
            [event_id] = gateway.announce(event(group))
            assert next(events).id == event_id
        for stream, first in zip(streams, firsts, strict=True):
            assert (await within(first))["productGroupChanged"]["eventId"] == event_id
            await stream.aclose()


async def test_each_subscription_counts_against_the_clients_request_rate(start: Start
                                                                         ) -> None:
    gateway = start(rate_limits={"requests_per_minute": 2})
    async with ws_session(gateway) as session:
        streams = [session.subscribe(request(GROUP_CHANGES)) for _ in range(2)]
        pending = [asyncio.ensure_future(anext(stream)) for stream in streams]
        await subscribed(gateway, 2)
        with pytest.raises(TransportQueryError) as refused:
            await within(anext(session.subscribe(request(GROUP_CHANGES))))
        [error] = refused.value.errors or []
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert 0 < error["extensions"]["retryAfter"] <= 60
        for waiting in pending:  # ends them (a `complete` each)
            waiting.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    await subscribed(gateway, 0)


def announce_until_dropped(gateway: Gateway, make: Callable[[], ChangeEvent]) -> int:
    """Announce events in batches until the gateway drops its one subscriber; how many."""
    announced = 0
    deadline = time.monotonic() + 60
    while gateway.subscribers():
        assert time.monotonic() < deadline, "the stalled subscriber was never dropped"
        announced += len(gateway.announce(*(make() for _ in range(50))))
    return announced


def small_receive_buffer() -> list[tuple[int, int, int]]:
    """A client socket with a small receive window: a reader that stops reading soon holds
    the sender back, instead of after megabytes of kernel buffers."""
    return [(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)]


def test_an_sse_subscriber_that_stops_reading_is_dropped(start: Start) -> None:
    gateway = start(changes={"queue_size": 2})
    group = gateway.groups("carecloud")[0]
    transport = httpx.HTTPTransport(socket_options=small_receive_buffer())
    with httpx.Client(transport=transport, timeout=WAIT_SECONDS) as client, \
            sse(gateway, WIDE, client=client) as events:
        gateway.wait_subscribers(1)
        [first_id] = gateway.announce(event(group))
        assert next(events).id == first_id
        announced = 1 + announce_until_dropped(gateway, lambda: event(group))
        assert_healthy(gateway)
        rest = list(events)  # reading again: what was under way, the reason, the end
    *delivered, dropped, complete = rest
    assert complete.event == "complete"
    [error] = json.loads(dropped.data)["errors"]
    assert error["extensions"] == {"code": "SLOW_SUBSCRIBER",
                                   "lastEventId": last_id([first_id], delivered)}
    assert "reconnect with the last event id" in error["message"]
    assert 1 + len(delivered) < announced


def last_id(first: list[str], delivered: list[ServerSentEvent]) -> str:
    return (first + [e.id for e in delivered])[-1]


async def test_a_websocket_subscriber_that_stops_reading_is_dropped(start: Start) -> None:
    gateway = start(changes={"queue_size": 2})
    group = gateway.groups("carecloud")[0]
    host, port = gateway.url.removeprefix("http://").split(":")
    sock = socket.socket()
    for option in small_receive_buffer():
        sock.setsockopt(*option)
    sock.connect((host, int(port)))
    # max_queue=1: the client library stops reading its socket once one message waits.
    connection = await raw_socket(gateway, sock=sock, max_queue=1)
    async with connection:
        await subscribe(connection, WIDE)
        await subscribed(gateway, 1)
        announced = await asyncio.to_thread(announce_until_dropped, gateway,
                                            lambda: event(group))
        assert_healthy(gateway)
        received = await messages_until_complete(connection)
    *delivered, dropped, complete = received
    assert complete == {"id": "1", "type": "complete"}
    assert dropped["type"] == "next"
    assert error_codes(dropped["payload"]["errors"]) == ["SLOW_SUBSCRIBER"]
    assert len(delivered) < announced


def assert_healthy(gateway: Gateway) -> None:
    """The gateway still answers, and its change feed still serves other subscribers."""
    assert httpx.get(f"{gateway.url}/healthz", timeout=WAIT_SECONDS).status_code == 200
    group = gateway.groups("joptic")[0]
    before = gateway.subscribers()
    with sse(gateway, GROUP_CHANGES) as events:
        gateway.wait_subscribers(before + 1)
        [event_id] = gateway.announce(event(group))
        assert next(events).id == event_id
    gateway.wait_subscribers(before)


async def test_stopping_the_gateway_ends_every_subscription_with_a_reason(start: Start
                                                                          ) -> None:
    gateway = start()
    group = gateway.groups("axim")[0]

    def read_sse() -> list[ServerSentEvent]:
        with sse(gateway, GROUP_CHANGES) as events:
            return list(events)

    reading = asyncio.ensure_future(asyncio.to_thread(read_sse))
    connection = await raw_socket(gateway)
    await subscribe(connection, GROUP_CHANGES)
    await subscribed(gateway, 2)
    [event_id] = gateway.announce(event(group))
    first = json.loads(await within(connection.recv()))
    assert first["payload"]["data"]["productGroupChanged"]["eventId"] == event_id
    started = time.monotonic()
    await asyncio.to_thread(gateway.servers.stop)
    assert time.monotonic() - started < 10  # no grace period waited out on open streams
    ws_end = await messages_until_complete(connection)
    with pytest.raises(websockets.ConnectionClosed):
        await within(connection.recv())
    assert (connection.close_code, connection.close_reason) == SHUTDOWN_CLOSE
    [ended] = ws_end[-2]["payload"]["errors"]
    assert ended["extensions"] == {"code": "SHUTTING_DOWN", "lastEventId": event_id}
    *_, last, dropped, complete = await within(reading)
    assert last.id == event_id
    assert json.loads(dropped.data)["errors"][0]["extensions"] == {
        "code": "SHUTTING_DOWN", "lastEventId": event_id}
    assert complete.event == "complete"


async def test_a_drain_ends_subscriptions_at_its_start_and_refuses_new_ones(start: Start
                                                                            ) -> None:
    gateway = start()
    connection = await raw_socket(gateway)
    async with connection:
        await subscribe(connection, GROUP_CHANGES)
        await subscribed(gateway, 1)
        # What SIGTERM starts (gateway/edge/serving.py Drain), while the server goes on serving.
        await asyncio.to_thread(gateway.servers.run, gateway.app.state.drain.stop())
        ended = await messages_until_complete(connection)
        with pytest.raises(websockets.ConnectionClosed):
            await within(connection.recv())
    assert error_codes(ended[-2]["payload"]["errors"]) == ["SHUTTING_DOWN"]
    assert (connection.close_code, connection.close_reason) == SHUTDOWN_CLOSE
    assert httpx.get(f"{gateway.url}/healthz", timeout=WAIT_SECONDS).status_code == 200
    with sse(gateway, GROUP_CHANGES) as events:  # a client reconnecting here is sent away
        refused, complete = list(events)
    assert error_codes(json.loads(refused.data)["errors"]) == ["SHUTTING_DOWN"]
    assert complete.event == "complete"
