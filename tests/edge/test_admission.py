"""One admission for every way in (gateway/edge/admission.py), over real sockets: the same refusal,
with the same code and message, whether the operation came as an HTTP request answered as JSON,
as Server-Sent Events, or as a WebSocket's ``subscribe``; and a name the document does not
define labels no metric."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from tests.observed import scrape
from tests.subscriptions.conftest import PROTOCOL, Emulators, gateway_config, within

Json = dict[str, Any]
DEEP = ("subscription { productGroupChanged { node { "
        + "parent { " * 14 + "name" + " }" * 14 + " } } }")  # 16 fields deep
# An event whose answer may hold more values than the test gateway allows (1,000).
WIDE = """subscription { productGroupChanged { node {
  products(first: 100) { nodes { id name sku variants { sku } } } } } }"""
SMALL = """subscription { productGroupChanged { eventId } }"""


@pytest.fixture
def gateway(emulator_servers: Emulators) -> Iterator[str]:
    config = gateway_config(emulator_servers, limits={"max_response_values": 1000},
                            rate_limits={"requests_per_minute": 6})
    with ServerThread({"gateway": create_app(config)}) as servers:
        yield servers.urls["gateway"]


def params(query: str | Json) -> Json:
    return query if isinstance(query, dict) else {"query": query}


def over_http(url: str, query: str | Json) -> Json:
    response = httpx.post(f"{url}/graphql", json=params(query), timeout=10,
                          headers={"Accept": "application/graphql-response+json"})
    body: Json = response.json()
    [error] = body["errors"]
    return dict(error)


def over_sse(url: str, query: str | Json) -> Json:
    response = httpx.post(f"{url}/graphql", json=params(query), timeout=10,
                          headers={"Accept": "text/event-stream"})
    if response.headers["content-type"].startswith("application/json"):
        body: Json = response.json()  # refused before a stream began
    else:
        data = next(line for line in response.text.splitlines() if line.startswith("data: {"))
        body = json.loads(data.removeprefix("data: "))
    [error] = body["errors"]
    return dict(error)


async def over_websocket(url: str, query: str | Json) -> Json:
    async with websockets.connect(url.replace("http", "ws", 1) + "/graphql",
                                  subprotocols=[PROTOCOL]) as connection:
        await connection.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await within(connection.recv()))["type"] == "connection_ack"
        await connection.send(json.dumps({"id": "1", "type": "subscribe",
                                          "payload": params(query)}))
        message = json.loads(await within(connection.recv()))
    assert message["type"] == "error", message
    [error] = message["payload"]
    return dict(error)


async def through_all_three(url: str, query: str | Json) -> list[Json]:
    return [over_http(url, query), over_sse(url, query), await over_websocket(url, query)]


def same(errors: list[Json]) -> tuple[str, str]:
    """The one code and message every transport answered."""
    assert len({(e["extensions"]["code"], e["message"]) for e in errors}) == 1, errors
    return errors[0]["extensions"]["code"], errors[0]["message"]


async def test_the_same_refusal_over_http_sse_and_websocket(gateway: str) -> None:
    # The document limits, at the single parse site.
    assert same(await through_all_three(gateway, DEEP))[0] == "DOCUMENT_LIMIT_EXCEEDED"
    # A hash no one registered.
    unknown = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}}
    assert same(await through_all_three(gateway, unknown))[0] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(("query", "code"), [
    (WIDE, "QUERY_TOO_COMPLEX"),  # the cost rule's price of the answer, at validation
    ("subscription { productGroupChanged { nope } }", "GRAPHQL_VALIDATION_FAILED"),
])
async def test_a_subscription_is_refused_alike_over_sse_and_websocket(
        gateway: str, query: str, code: str) -> None:
    # (Over HTTP as JSON a subscription is refused for its transport first: 406.)
    assert same([over_sse(gateway, query), await over_websocket(gateway, query)])[0] == code
    assert over_http(gateway, query)["extensions"]["code"] == "NOT_ACCEPTABLE"


async def test_the_request_rate_refuses_alike_on_every_transport(gateway: str) -> None:
    for _ in range(6):  # the client's budget: 6 a minute, spent over HTTP
        httpx.post(f"{gateway}/graphql", json={"query": "{ sources { id } }"}, timeout=10)
    code, message = same(await through_all_three(gateway, SMALL))
    assert code == "RATE_LIMITED" and "6 a minute" in message


def test_a_name_the_document_does_not_define_labels_no_metric(gateway: str) -> None:
    def ask(name: str | None) -> httpx.Response:
        return httpx.post(f"{gateway}/graphql", timeout=10, json={
            "query": "query Defined { sources { id } }", "operationName": name})

    assert ask("Invented").json()["errors"][0]["extensions"]["code"] == (
        "GRAPHQL_VALIDATION_FAILED")
    assert "errors" not in ask("Defined").json()
    operations = scrape(gateway).labels("gateway_graphql_requests_total", "operation")
    assert "Defined" in operations and "Invented" not in operations
