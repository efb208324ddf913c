"""``[server] profile``, over real sockets: production (what ``serve`` runs by default) tells a
stranger nothing it need not, and refuses cross-site GET queries; development (the demo) keeps
every convenience."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.config import ConfigError, parse_config
from gateway.demo import demo_config
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS, KINDS
from gateway.emulators.common import Fault
from tests.conftest import RunningEmulator, RunningGateway
from tests.helpers import codes

Emulators = dict[str, RunningEmulator]
SECRET = "production-profile-test-cursor-secret"
GROUPS = "query Groups { productGroups(first: 1) { totalCount } }"


def production_data(emulators: Emulators, **server: Any) -> dict[str, Any]:
    """A configuration that says nothing of its profile: production, by default."""
    return {
        "server": {"cursor_secret": SECRET, "cors_origins": ["https://shop.example.com"],
                   **server},
        "defaults": {"cache_ttl_seconds": 0, "group_cache_ttl_seconds": 0, "max_retries": 0,
                     "breaker_threshold": 1, "breaker_reset_seconds": 300},
        "sources": [{"name": kind, "kind": kind, "base_url": emulators[kind].url,
                     "token": DEMO_TOKENS[kind]} for kind in KINDS],
    }


@pytest.fixture(scope="module")
def production(emulator_servers: Emulators) -> Iterator[str]:
    config = parse_config(production_data(emulator_servers))
    assert config.server.profile == "production"
    with ServerThread({"gw": create_app(config)}) as servers:
        yield servers.urls["gw"]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as shared:
        yield shared


# -- introspection and suggestions ------------------------------------------------------------


def test_production_refuses_introspection_but_not_typename(production: str,
                                                           client: httpx.Client) -> None:
    for query in ("{ __schema { queryType { name } } }", '{ __type(name: "Product") { name } }'):
        body = client.post(f"{production}/graphql", json={"query": query}).json()
        assert "data" not in body
        assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert "introspection has been disabled" in body["errors"][0]["message"]
    body = client.post(f"{production}/graphql", json={"query": "{ __typename }"}).json()
    assert body == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(("query", "variables"), [
    ("{ sourcez { id } }", None),  # a field
    ("{ productGroups(firts: 1) { totalCount } }", None),  # an argument
    ("{ productGroups(orderBy: {field: NAM}) { totalCount } }", None),  # an enum value
    ("query($o: ProductGroupOrder) { productGroups(orderBy: $o) { totalCount } }",
     {"o": {"field": "NAM"}}),  # an enum value in variables
    ("query($f: ProductGroupFiltr) { sources { id } }", None),  # a type
], ids=["field", "argument", "enum", "variable", "type"])
def test_production_suggests_no_names(production: str, gateway_server: RunningGateway,
                                      client: httpx.Client, query: str,
                                      variables: dict[str, Any] | None) -> None:
    payload = {"query": query, "variables": variables}
    hidden = client.post(f"{production}/graphql", json=payload).json()
    shown = client.post(f"{gateway_server.url}/graphql", json=payload).json()

    assert hidden["errors"] and all("Did you mean" not in e["message"]
                                    for e in hidden["errors"]), hidden
    assert any("Did you mean" in e["message"] for e in shown["errors"]), shown  # development


# -- GraphiQL, /readyz, headers, redirects -------------------------------------------------------


def test_production_serves_no_playground(production: str, client: httpx.Client) -> None:
    # A browser's GET (no query, no preflight header) is told the playground is off, not
    # that its request might be a forgery.
    page = client.get(f"{production}/graphql",
                      headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert "<html" not in page.text.lower()
    assert not page.headers["content-type"].startswith("text/html")
    assert page.status_code == 404 and codes(page.json()) == ["PLAYGROUND_DISABLED"]
    assert "the playground is off" in page.json()["errors"][0]["message"]
    assert client.get(f"{production}/playground/graphiql.js").status_code == 404


def test_production_readyz_says_ready_and_nothing_else(production: str,
                                                       client: httpx.Client) -> None:
    response = client.get(f"{production}/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_readyz_is_unready_while_every_breaker_is_open(
        emulator_servers: Emulators, emulator: Callable[[str], RunningEmulator],
        client: httpx.Client) -> None:
    for kind in KINDS:
        emulator(kind).faults.set(Fault(status=503))
    config = parse_config(production_data(emulator_servers))
    detailed = parse_config(production_data(emulator_servers, readyz_detail=True))
    with ServerThread({"plain": create_app(config), "detail": create_app(detailed)}) as servers:
        for url in servers.urls.values():
            # One failure opens a breaker (threshold 1): every source fails once.
            client.post(f"{url}/graphql", json={"query": "{ productGroups(first: 1) { "
                        "totalCount } products(first: 1) { totalCount } }"})
        plain = client.get(f"{servers.urls['plain']}/readyz")
        detail = client.get(f"{servers.urls['detail']}/readyz")

    assert (plain.status_code, plain.json()) == (503, {"status": "unready"})
    assert detail.status_code == 503
    assert detail.json()["status"] == "unready"
    assert {s["breaker"] for s in detail.json()["sources"].values()} == {"open"}


def test_no_server_header(production: str, gateway_server: RunningGateway,
                          client: httpx.Client) -> None:
    for url in (f"{production}/healthz", f"{production}/graphql",
                f"{gateway_server.url}/healthz"):
        response = client.post(url, json={"query": "{ __typename }"}) if url.endswith(
            "graphql") else client.get(url)
        assert "server" not in response.headers, url


def test_no_redirect_built_from_the_host_header(production: str, gateway_server: RunningGateway,
                                                client: httpx.Client) -> None:
    for base in (production, gateway_server.url):
        response = client.get(f"{base}/graphql/?query=%7B__typename%7D",
                              headers={"Host": "evil.example", "Apollo-Require-Preflight": "1"})
        assert response.status_code == 404, base
        assert "location" not in response.headers


# -- CSRF prevention for GET -------------------------------------------------------------------


def test_a_get_query_without_a_preflight_header_is_refused_before_any_upstream_call(
        production: str, emulator: Callable[[str], RunningEmulator],
        client: httpx.Client) -> None:
    logs = [emulator(kind).log for kind in KINDS]
    for headers in ({}, {"Content-Type": "text/plain"},
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    {"Content-Type": "multipart/form-data; boundary=x"},
                    {"Apollo-Require-Preflight": ""}):
        response = client.get(f"{production}/graphql", params={"query": GROUPS},
                              headers=headers)
        assert response.status_code == 400, headers
        body = response.json()
        assert codes(body) == ["PREFLIGHT_REQUIRED"]
        assert "Apollo-Require-Preflight" in body["errors"][0]["message"]
    assert sum(len(log) for log in logs) == 0


@pytest.mark.parametrize("headers", [
    {"Apollo-Require-Preflight": "true"},
    {"X-Apollo-Operation-Name": "Groups"},
    {"Content-Type": "application/json"},
], ids=["apollo-require-preflight", "x-apollo-operation-name", "content-type"])
def test_a_get_query_with_a_header_a_form_cannot_send_runs(
        production: str, client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.get(f"{production}/graphql", params={"query": GROUPS}, headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["productGroups"]["totalCount"] > 0


def test_post_and_the_demo_need_no_preflight_header(production: str,
                                                    gateway_server: RunningGateway,
                                                    client: httpx.Client) -> None:
    posted = client.post(f"{production}/graphql", json={"query": "{ __typename }"})
    demo = client.get(f"{gateway_server.url}/graphql", params={"query": "{ __typename }"})
    assert posted.json() == demo.json() == {"data": {"__typename": "Query"}}


def test_an_allowed_origin_may_send_the_preflight_header(production: str,
                                                         client: httpx.Client) -> None:
    response = client.options(f"{production}/graphql", headers={
        "Origin": "https://shop.example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "apollo-require-preflight"})
    assert response.status_code == 200
    assert "apollo-require-preflight" in response.headers["access-control-allow-headers"]


# -- the profiles themselves -------------------------------------------------------------------


def test_production_needs_a_cursor_secret(emulator_servers: Emulators) -> None:
    data = production_data(emulator_servers)
    del data["server"]["cursor_secret"]
    with pytest.raises(ConfigError, match=r"<config>: \[server\] cursor_secret: the production "
                                          r"profile needs a secret to sign cursors with"):
        parse_config(data)
    data["server"]["cursor_secret"] = "   "
    with pytest.raises(ConfigError, match="cursor_secret"):
        parse_config(data)


def test_a_key_set_in_the_file_wins_over_the_profile(emulator_servers: Emulators) -> None:
    config = parse_config(production_data(emulator_servers, graphiql=True, introspection=True))
    assert (config.server.graphiql, config.server.introspection) == (True, True)
    assert (config.server.field_suggestions, config.server.readyz_detail) == (False, False)


def test_the_demo_is_development_with_a_cursor_secret_of_its_own() -> None:
    urls = {kind: "http://127.0.0.1:1" for kind in KINDS}
    first, second = demo_config(urls), demo_config(urls)
    server = first.server
    assert server.profile == "development"
    assert (server.graphiql, server.introspection, server.field_suggestions,
            server.readyz_detail, server.csrf_prevention) == (True, True, True, True, False)
    assert first.server.cursor_secret is not None and second.server.cursor_secret is not None
    secret = first.server.cursor_secret.get_secret_value()
    assert len(secret) >= 32
    assert secret != second.server.cursor_secret.get_secret_value()
