"""Subscriptions over WebSocket (graphql-transport-ws), with the gql package's client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from gql.transport.exceptions import TransportQueryError

from gateway.changes.events import ChangeType
from gateway.sources.records import GroupRecord
from tests.helpers import error_codes
from tests.subscriptions.conftest import (
    GROUP_CHANGES,
    PRODUCT_CHANGES,
    Gateway,
    event,
    hears_one_event,
    request,
    subscribed,
    within,
    ws_session,
)

Json = dict[str, Any]


def child_and_parent(groups: list[GroupRecord]) -> tuple[GroupRecord, GroupRecord]:
    by_id = {group.upstream_id: group for group in groups}
    child = next(g for g in groups if g.parent_id in by_id and g.name)
    return child, by_id[child.parent_id]  # type: ignore[index]


async def test_group_and_product_changes_reach_a_subscriber_as_queries_would_show_them(
        gateway: Gateway) -> None:
    group, parent = child_and_parent(gateway.groups("carecloud"))
    product = gateway.products("comestri")[0]
    async with ws_session(gateway) as session:
        groups = session.subscribe(request(GROUP_CHANGES))
        products = session.subscribe(request(PRODUCT_CHANGES))
        next_group = asyncio.ensure_future(anext(groups))
        next_product = asyncio.ensure_future(anext(products))
        await subscribed(gateway, 2)
        group_id, product_id = gateway.announce(
            event(group, ChangeType.UPDATED), event(product, ChangeType.DELETED))
        group_change = (await within(next_group))["productGroupChanged"]
        product_change = (await within(next_product))["productChanged"]
        await groups.aclose()
        await products.aclose()
    assert group_change == {
        "change": "UPDATED", "eventId": group_id,
        "observedAt": group_change["observedAt"], "source": {"id": "carecloud"},
        "node": {"id": group.id, "name": group.name, "upstreamId": group.upstream_id,
                 "parent": {"name": parent.name}},  # resolved upstream, as in a query
    }
    assert product_change == {
        "change": "DELETED", "eventId": product_id,
        "observedAt": product_change["observedAt"], "source": {"id": "comestri"},
        "node": {"id": product.id, "name": product.name, "sku": product.sku},
    }
    assert group_change["observedAt"].endswith("+00:00")
    await subscribed(gateway, 0)


async def test_a_filter_chooses_the_sources_and_kinds_of_change(gateway: Gateway) -> None:
    carecloud, joptic = gateway.groups("carecloud")[0], gateway.groups("joptic")[0]
    wanted = {"sources": ["joptic"], "changes": ["DELETED", "CREATED"]}
    async with ws_session(gateway) as session:
        stream = session.subscribe(request(GROUP_CHANGES, filter=wanted))
        first = asyncio.ensure_future(anext(stream))
        await subscribed(gateway, 1)
        ids = gateway.announce(event(carecloud, ChangeType.UPDATED),
                               event(joptic, ChangeType.UPDATED),
                               event(joptic, ChangeType.DELETED),
                               event(carecloud, ChangeType.DELETED),
                               event(joptic, ChangeType.CREATED))
        received = [(await within(first))["productGroupChanged"],
                    (await within(anext(stream)))["productGroupChanged"]]
        await stream.aclose()
    # The last one came after every unwanted one: none of those was sent.
    assert [(r["eventId"], r["change"], r["source"]["id"]) for r in received] == [
        (ids[2], "DELETED", "joptic"), (ids[4], "CREATED", "joptic")]


async def test_after_an_event_id_replays_exactly_what_was_missed(gateway: Gateway) -> None:
    group = gateway.groups("axim")[0]
    async with ws_session(gateway) as session:
        seen = await hears_one_event(gateway, session, group)
        await subscribed(gateway, 0)
        missed = gateway.announce(event(group, ChangeType.UPDATED),
                                  event(group, ChangeType.DELETED))
        resumed = session.subscribe(request(GROUP_CHANGES, after=seen))
        replayed = [(await within(anext(resumed)))["productGroupChanged"] for _ in missed]
        [live] = gateway.announce(event(group, ChangeType.CREATED))
        then = (await within(anext(resumed)))["productGroupChanged"]
        await resumed.aclose()
    assert [r["eventId"] for r in replayed] == missed
    assert [r["change"] for r in replayed] == ["UPDATED", "DELETED"]
    assert then["eventId"] == live  # and nothing twice in between


@pytest.mark.parametrize(("variables", "code", "words"), [
    ({"filter": {"sources": ["nowhere"]}}, "BAD_USER_INPUT", "no source 'nowhere'"),
    ({"filter": {"sources": []}}, "BAD_USER_INPUT", "is empty"),
    ({"after": "yesterday"}, "BAD_USER_INPUT", "event id"),
])
async def test_a_subscription_refused_at_its_start_is_an_error_and_the_connection_stays(
        gateway: Gateway, variables: Json, code: str, words: str) -> None:
    group = gateway.groups("joptic")[0]
    async with ws_session(gateway) as session:
        with pytest.raises(TransportQueryError) as refused:
            await within(anext(session.subscribe(request(GROUP_CHANGES, **variables))))
        assert error_codes(refused.value.errors) == [code]
        assert words in refused.value.errors[0]["message"]  # type: ignore[index]
        await hears_one_event(gateway, session, group)  # the same connection goes on


async def test_at_most_max_subscriptions_per_connection_run_at_once(start: Any) -> None:
    gateway: Gateway = start(changes={"max_subscriptions_per_connection": 2})
    group = gateway.groups("carecloud")[0]
    async with ws_session(gateway) as session:
        streams = [session.subscribe(request(GROUP_CHANGES)) for _ in range(2)]
        firsts = [asyncio.ensure_future(anext(stream)) for stream in streams]
        await subscribed(gateway, 2)
        with pytest.raises(TransportQueryError) as refused:
            await within(anext(session.subscribe(request(GROUP_CHANGES))))
        assert error_codes(refused.value.errors) == ["SUBSCRIPTION_LIMIT"]
        assert "max_subscriptions_per_connection" in str(refused.value)
        [event_id] = gateway.announce(event(group))
        for first in firsts:  # the connection and its subscriptions go on
            assert (await within(first))["productGroupChanged"]["eventId"] == event_id
        await streams[0].aclose()
        await subscribed(gateway, 1)
        third = session.subscribe(request(GROUP_CHANGES))  # room again
        next_third = asyncio.ensure_future(anext(third))
        await subscribed(gateway, 2)
        [later] = gateway.announce(event(group))
        assert (await within(next_third))["productGroupChanged"]["eventId"] == later
        await third.aclose()
        await streams[1].aclose()


DEEP = """subscription { productGroupChanged { node { parent { parent { parent {
  parent { name } } } } } } }"""


async def test_document_limits_and_the_cost_rule_refuse_a_subscription_before_it_runs(
        start: Any) -> None:
    gateway: Gateway = start(limits={"max_depth": 6, "max_cost": 2})
    costly = """subscription { productGroupChanged { node {
      products(first: 100) { nodes { name } } parent { products(first: 100) { nodes { name } } }
    } } }"""
    async with ws_session(gateway) as session:
        for query, code in ((DEEP, "DOCUMENT_LIMIT_EXCEEDED"), (costly, "QUERY_TOO_COMPLEX")):
            with pytest.raises(TransportQueryError) as refused:
                await within(anext(session.subscribe(request(query))))
            assert error_codes(refused.value.errors) == [code]
        with pytest.raises(TransportQueryError) as invalid:
            await within(anext(session.subscribe(request(
                "subscription { productGroupChanged { nope } }"))))
        assert error_codes(invalid.value.errors) == ["GRAPHQL_VALIDATION_FAILED"]
    assert gateway.subscribers() == 0  # none of them subscribed


async def test_queries_go_over_http_and_subscriptions_over_a_stream(gateway: Gateway) -> None:
    async with ws_session(gateway) as session:
        with pytest.raises(TransportQueryError) as refused:
            await within(anext(session.subscribe(request("{ sources { id } }"))))
        assert error_codes(refused.value.errors) == ["BAD_USER_INPUT"]
        assert "over HTTP" in str(refused.value)
    answer = httpx.post(gateway.graphql_url, json={"query": GROUP_CHANGES}, timeout=10)
    assert answer.status_code == 406
    assert error_codes(answer.json()["errors"]) == ["NOT_ACCEPTABLE"]


async def test_a_client_that_leaves_releases_its_subscriptions(gateway: Gateway) -> None:
    async with websockets.connect(gateway.ws_url, subprotocols=[
            websockets.Subprotocol("graphql-transport-ws")]) as socket:
        await socket.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        for number in range(3):
            await socket.send(json.dumps({"id": str(number), "type": "subscribe",
                                          "payload": {"query": GROUP_CHANGES}}))
        await subscribed(gateway, 3)
    # Closed without a `complete`: the gateway lets go of all three.
    await subscribed(gateway, 0)
