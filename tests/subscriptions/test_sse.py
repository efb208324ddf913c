"""Subscriptions over Server-Sent Events (GraphQL over SSE, distinct connections mode), read
with httpx-sse."""

from __future__ import annotations

import json

import httpx

from gateway.changes.events import ChangeType
from tests.helpers import error_codes
from tests.subscriptions.conftest import (
    GROUP_CHANGES,
    WAIT_SECONDS,
    Gateway,
    event,
    sse,
)


def test_each_change_is_a_next_event_with_its_event_id(gateway: Gateway) -> None:
    group = gateway.groups("joptic")[0]
    with sse(gateway, GROUP_CHANGES) as events:
        gateway.wait_subscribers(1)
        ids = gateway.announce(event(group, ChangeType.CREATED), event(group, ChangeType.UPDATED))
        received = [next(events) for _ in ids]
    gateway.wait_subscribers(0)  # the client closed the stream: the gateway let go
    assert [(e.event, e.id) for e in received] == [("next", ids[0]), ("next", ids[1])]
    first = json.loads(received[0].data)
    assert first == {"data": {"productGroupChanged": {
        "change": "CREATED", "eventId": ids[0], "observedAt": first["data"][
            "productGroupChanged"]["observedAt"], "source": {"id": "joptic"},
        "node": {"id": group.id, "name": group.name, "upstreamId": group.upstream_id,
                 "parent": None}}}}  # a root group


def test_last_event_id_resumes_after_it(gateway: Gateway) -> None:
    group = gateway.groups("carecloud")[0]
    with sse(gateway, GROUP_CHANGES) as events:
        gateway.wait_subscribers(1)
        [seen] = gateway.announce(event(group))
        assert next(events).id == seen
    gateway.wait_subscribers(0)
    missed = gateway.announce(event(group), event(group, ChangeType.DELETED))
    with sse(gateway, GROUP_CHANGES, headers={"Last-Event-ID": seen}) as events:
        replayed = [next(events) for _ in missed]
        [live] = gateway.announce(event(group, ChangeType.CREATED))
        then = next(events)
    assert [e.id for e in replayed] == missed
    assert [json.loads(e.data)["data"]["productGroupChanged"]["change"] for e in replayed] == [
        "UPDATED", "DELETED"]
    assert then.id == live


def test_a_refused_subscription_is_a_next_with_the_error_then_complete(
        gateway: Gateway) -> None:
    for variables, code in (({"filter": {"sources": ["nowhere"]}}, "BAD_USER_INPUT"),
                            ({"after": "not an id"}, "BAD_USER_INPUT")):
        with sse(gateway, GROUP_CHANGES, variables=variables) as events:
            refused, complete = list(events)
        assert refused.event == "next"
        assert refused.id == ""
        assert error_codes(json.loads(refused.data)["errors"]) == [code]
        assert complete.event == "complete"
    with sse(gateway, "subscription { productGroupChanged { nope } }") as events:
        invalid, _ = list(events)
    body = json.loads(invalid.data)
    assert "data" not in body  # a request error: nothing ran
    assert error_codes(body["errors"]) == ["GRAPHQL_VALIDATION_FAILED"]
    with sse(gateway, "subscription {") as events:
        unparsed, _ = list(events)
    assert error_codes(json.loads(unparsed.data)["errors"]) == ["GRAPHQL_PARSE_FAILED"]


def test_a_query_over_sse_is_one_next_then_complete(gateway: Gateway) -> None:
    with sse(gateway, "{ sources { id } }") as events:
        answer, complete = list(events)
    assert json.loads(answer.data)["data"]["sources"][0] == {"id": "carecloud"}
    assert complete.event == "complete"


def test_the_stream_is_marked_for_proxies_and_a_get_works_too(gateway: Gateway) -> None:
    group = gateway.groups("axim")[0]
    params = {"query": "subscription { productGroupChanged { eventId } }"}
    with httpx.Client(timeout=WAIT_SECONDS) as client, client.stream(
            "GET", gateway.graphql_url, params=params,
            headers={"Accept": "text/event-stream"}) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-accel-buffering"] == "no"
        gateway.wait_subscribers(1)
        [event_id] = gateway.announce(event(group))
        lines = response.iter_lines()
        assert [next(lines) for _ in range(4)] == [
            f"id: {event_id}", "event: next",
            'data: {"data":{"productGroupChanged":{"eventId":"' + event_id + '"}}}', ""]
    gateway.wait_subscribers(0)
