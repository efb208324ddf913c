"""A subscription is a standing request, over real sockets: each event is admitted against the
client's cost budget before it is resolved (past it the subscription ends with
``COST_BUDGET_EXCEEDED``, ``retryAfter`` and ``lastEventId``, and resuming later misses nothing);
a replay on subscribe is charged like events and bounded; a client holds at most its share of
subscriptions and sockets; a subscription ends when its token expires; and what a subscriber
receives from a source with pass-through credentials is its own tenant's view."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
import websockets
from gql.transport.exceptions import TransportQueryError

from gateway.clock import Clock
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from tests.conftest import RunningEmulator
from tests.helpers import error_codes
from tests.leaks import CONFIGURED
from tests.subscriptions.conftest import (
    GROUP_CHANGES,
    PROTOCOL,
    WAIT_SECONDS,
    Emulators,
    Gateway,
    event,
    gateway_config,
    request,
    sse,
    subscribed,
    within,
    ws_session,
)

Start = Callable[..., Gateway]
# Each event: the group's first two products, one Axim call (the cost rule's price: 1).
SHELF = """subscription ($after: String) {
  productGroupChanged(filter: {sources: ["axim"]}, after: $after) {
    eventId node { name products(first: 2) { nodes { name } } } } }"""


def upstream_requests(emulator: RunningEmulator) -> int:
    return len(emulator.log.records)


def window_passes(gateway: Gateway) -> None:
    """What a minute's passing does to the client's budgets: every window starts anew."""
    storage = gateway.app.graphql.admission.rate_limits._storage
    gateway.servers.run(storage.reset())


async def test_past_the_cost_budget_a_subscription_ends_and_resumes_without_a_gap(
        start: Start, emulator: Callable[[str], RunningEmulator]) -> None:
    gateway = start(rate_limits={"cost_per_minute": 3})
    axim = emulator("axim")
    groups = gateway.groups("axim")[:6]
    axim.log.clear()
    async with ws_session(gateway) as session:
        stream = session.subscribe(request(SHELF))
        first = asyncio.ensure_future(anext(stream))
        await subscribed(gateway, 1)
        announced = gateway.announce(*(event(group) for group in groups))
        received = [await within(first), *[await within(anext(stream)) for _ in range(2)]]
        with pytest.raises(TransportQueryError) as ended:
            await within(anext(stream))
    assert [r["productGroupChanged"]["eventId"] for r in received] == announced[:3]
    [error] = ended.value.errors or []
    assert error["extensions"]["code"] == "COST_BUDGET_EXCEEDED"
    assert 0 < error["extensions"]["retryAfter"] <= 60
    assert error["extensions"]["lastEventId"] == announced[2]
    assert upstream_requests(axim) <= 3  # the budget: the fourth event was not resolved
    await subscribed(gateway, 0)
    # Later (the window passed), `after` the last event received: the rest, once each.
    window_passes(gateway)
    async with ws_session(gateway) as session:
        stream = session.subscribe(request(SHELF, after=announced[2]))
        resumed = [await within(anext(stream)) for _ in range(3)]
        assert [r["productGroupChanged"]["eventId"] for r in resumed] == announced[3:]
        await stream.aclose()


def test_a_replay_is_charged_like_events_and_bounded(
        start: Start, emulator: Callable[[str], RunningEmulator]) -> None:
    gateway = start(changes={"max_replay_per_subscribe": 2})
    axim = emulator("axim")
    groups = gateway.groups("axim")[:10]
    announced = gateway.announce(*(event(group) for group in groups))
    axim.log.clear()
    with sse(gateway, SHELF, headers={"Last-Event-ID": "0-0"}) as events:
        replayed = [next(events) for _ in range(2)]
    assert [e.id for e in replayed] == announced[-2:]  # the newest two
    first, second = (json.loads(e.data) for e in replayed)
    assert first["extensions"] == {"replay": {"skipped": 8}}
    assert "extensions" not in second
    assert upstream_requests(axim) <= 2  # two events resolved, not ten


async def test_a_client_holds_its_share_and_another_still_subscribes(start: Start) -> None:
    gateway = start(changes={"max_subscriptions_per_client": 2,
                             "max_connections_per_client": 2},
                    auth={"api_keys": [{"client": c, "sha256": _digest(k)}
                                       for c, k in KEYS.items()]})
    mine = {"X-API-Key": KEYS["greedy"]}
    async with ws_session(gateway, init_payload=mine) as first, \
            ws_session(gateway, init_payload=mine) as second:
        streams = [first.subscribe(request(GROUP_CHANGES)),
                   second.subscribe(request(GROUP_CHANGES))]
        pending = [asyncio.ensure_future(anext(s)) for s in streams]
        await subscribed(gateway, 2)
        with pytest.raises(TransportQueryError) as refused:  # a third subscription
            await within(anext(first.subscribe(request(GROUP_CHANGES))))
        assert error_codes(refused.value.errors) == ["SUBSCRIPTION_LIMIT"]
        assert "max_subscriptions_per_client" in (refused.value.errors or [{}])[0]["message"]
        # A third socket of the same client is closed at connection_init.
        async with websockets.connect(gateway.ws_url, subprotocols=[PROTOCOL]) as third:
            await third.send(json.dumps({"type": "connection_init", "payload": mine}))
            with pytest.raises(websockets.ConnectionClosed):
                await within(third.recv())
        assert third.close_code == 4429
        assert "max_connections_per_client" in (third.close_reason or "")
        # Another client still subscribes, over either transport.
        other = {"X-API-Key": KEYS["modest"]}
        async with ws_session(gateway, init_payload=other) as session:
            theirs = session.subscribe(request(GROUP_CHANGES))
            waiting = asyncio.ensure_future(anext(theirs))
            await subscribed(gateway, 3)
            [announced] = gateway.announce(event(gateway.groups("joptic")[0]))
            assert (await within(waiting))["productGroupChanged"]["eventId"] == announced
            await theirs.aclose()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for stream in streams:
            await stream.aclose()


KEYS = {"greedy": "ak_greedy_" + "g" * 24, "modest": "ak_modest_" + "m" * 24}
CONFIGURED.update(KEYS.values())


def _digest(key: str) -> str:
    import hashlib
    return hashlib.sha256(key.encode()).hexdigest()


JWT_SECRET = "standing-subscription-secret-" + "s" * 24
CONFIGURED.add(JWT_SECRET)


class AheadClock:
    """The real clock, whose wall time a test moves ahead (its pollers still wait for real:
    a manual clock's sleep would move time for them too)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def advance(self, seconds: float) -> None:
        self.ahead += seconds

    @property
    def clock(self) -> Clock:
        return Clock(wall=lambda: time.time() + self.ahead)


@pytest.fixture
def clocked(emulator_servers: Emulators) -> Iterator[tuple[Gateway, AheadClock]]:
    """A gateway whose wall clock the test moves ahead, with HS256 bearer tokens."""
    clock = AheadClock()
    config = gateway_config(emulator_servers, auth={"jwt": {
        "algorithms": ["HS256"], "secret": JWT_SECRET}})
    app = create_app(config, clock=clock.clock)
    with ServerThread({"gateway": app}) as servers:
        yield Gateway(app, servers), clock


async def test_a_subscription_ends_when_its_token_expires(
        clocked: tuple[Gateway, AheadClock]) -> None:
    gateway, clock = clocked
    token = jwt.encode({"sub": "watcher", "exp": int(time.time()) + 600}, JWT_SECRET,
                       algorithm="HS256")
    group = gateway.groups("joptic")[0]
    async with ws_session(gateway, init_payload={"Authorization": f"Bearer {token}"}) as session:
        stream = session.subscribe(request(GROUP_CHANGES))
        first = asyncio.ensure_future(anext(stream))
        await subscribed(gateway, 1)
        [heard] = gateway.announce(event(group))
        assert (await within(first))["productGroupChanged"]["eventId"] == heard
        clock.advance(601)  # past the token's expiry, on the gateway's clock
        gateway.announce(event(group))
        with pytest.raises(TransportQueryError) as ended:
            await within(anext(stream))
    [error] = ended.value.errors or []
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["extensions"]["lastEventId"] == heard
    assert "expired" in error["message"]


TENANT_HEADER = "X-Joptic-Token"


@pytest.fixture
def tenants(emulator_servers: Emulators, emulator: Callable[[str], RunningEmulator]
            ) -> Iterator[Gateway]:
    """A gateway whose Joptic source passes clients' own tokens through, and two tenants of
    the Joptic emulator (each sees every name with its marker)."""
    joptic = emulator("joptic")
    joptic.tenants.add("tenant-a-token", "[a]")
    joptic.tenants.add("tenant-b-token", "[b]")
    base = gateway_config(emulator_servers)
    config = base.model_copy(update={"sources": [
        s.model_copy(update={"pass_through_header": TENANT_HEADER}) if s.name == "joptic" else s
        for s in base.sources]})
    app = create_app(config)
    with ServerThread({"gateway": app}) as servers:
        yield Gateway(app, servers)


TENANT_CHANGES = """subscription { productGroupChanged(filter: {sources: ["joptic"]}) {
  eventId change node { id name } } }"""


def test_each_subscriber_receives_its_own_tenants_view(tenants: Gateway) -> None:
    gateway = tenants
    group = gateway.groups("joptic")[0]  # read with the gateway's own account
    clients = [httpx.Client(timeout=WAIT_SECONDS) for _ in range(3)]
    tokens = ["tenant-a-token", "tenant-b-token", "not-a-tenant-token"]
    with sse(gateway, TENANT_CHANGES, headers={TENANT_HEADER: tokens[0]},
             client=clients[0]) as a, \
            sse(gateway, TENANT_CHANGES, headers={TENANT_HEADER: tokens[1]},
                client=clients[1]) as b, \
            sse(gateway, TENANT_CHANGES, headers={TENANT_HEADER: tokens[2]},
                client=clients[2]) as refused:
        gateway.wait_subscribers(3)
        [announced] = gateway.announce(event(group))
        views = [json.loads(next(stream).data) for stream in (a, b, refused)]
    for client in clients:
        client.close()
    seen_a, seen_b, seen_refused = views
    assert seen_a["data"]["productGroupChanged"]["node"] == {
        "id": group.id, "name": f"{group.name} [a]"}
    assert seen_b["data"]["productGroupChanged"]["node"]["name"] == f"{group.name} [b]"
    assert seen_a["data"]["productGroupChanged"]["eventId"] == announced
    # A token the upstream refuses: the source's error, and none of the item's data.
    assert seen_refused["data"] is None
    [error] = seen_refused["errors"]
    assert error["extensions"]["source"] == "joptic"
    assert error["extensions"]["code"].startswith("UPSTREAM_")
    assert str(group.name) not in json.dumps(seen_refused)


def test_a_deleted_item_is_told_to_a_tenant_by_its_id_alone(tenants: Gateway) -> None:
    gateway = tenants
    group = gateway.groups("joptic")[0]
    from gateway.changes.events import ChangeType
    with sse(gateway, TENANT_CHANGES, headers={TENANT_HEADER: "tenant-a-token"}) as events:
        gateway.wait_subscribers(1)
        gateway.announce(event(group, ChangeType.DELETED))
        seen: dict[str, Any] = json.loads(next(events).data)
    assert seen["data"]["productGroupChanged"] == {
        "eventId": seen["data"]["productGroupChanged"]["eventId"], "change": "DELETED",
        "node": {"id": group.id, "name": None}}
