"""The HTTP edge over a real socket: GraphQL, health, CORS."""

from __future__ import annotations

import httpx

from gateway.edge.app import vary_origin
from tests.conftest import RunningGateway


def test_sources_lists_the_four_demo_sources(gateway_server: RunningGateway) -> None:
    body = gateway_server.query("{ sources { id kind } }")
    assert body == {
        "data": {
            "sources": [
                {"id": "carecloud", "kind": "CARECLOUD"},
                {"id": "joptic", "kind": "JOPTIC"},
                {"id": "axim", "kind": "AXIM"},
                {"id": "comestri", "kind": "COMESTRI"},
            ]
        }
    }


def test_graphql_over_get(gateway_server: RunningGateway) -> None:
    response = httpx.get(f"{gateway_server.url}/graphql", params={"query": "{ sources { id } }"})
    assert response.status_code == 200
    assert response.json()["data"]["sources"][0] == {"id": "carecloud"}


def test_graphiql_on_browser_get(gateway_server: RunningGateway) -> None:
    response = httpx.get(f"{gateway_server.url}/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "graphiql" in response.text.lower()


def test_healthz(gateway_server: RunningGateway) -> None:
    response = httpx.get(f"{gateway_server.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(
        f"{url}/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


def test_cors_preflight_from_allowed_origin(gateway_server: RunningGateway) -> None:
    for origin in ("http://localhost:3000", "http://127.0.0.1:5173"):
        response = preflight(gateway_server.url, origin)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin


def test_cors_preflight_from_other_origin_is_refused(gateway_server: RunningGateway) -> None:
    for origin in ("https://evil.example.com", "http://localhost.evil.com:3000"):
        response = preflight(gateway_server.url, origin)
        assert "access-control-allow-origin" not in response.headers
        assert response.status_code == 400


def test_every_graphql_answer_varies_by_origin_with_or_without_one(
        gateway_server: RunningGateway) -> None:
    url, query = f"{gateway_server.url}/graphql", {"query": "{ sources { id } }"}
    plain = httpx.post(url, json=query)
    page = httpx.post(url, json=query, headers={"Origin": "http://localhost:3000"})
    stranger = httpx.post(url, json=query, headers={"Origin": "https://evil.example.com"})

    vary = plain.headers.get_list("vary")  # one header: a shared cache keeps pages apart
    assert len(vary) == 1 and vary[0].split(", ")[-1] == "Origin"
    assert "access-control-allow-origin" not in plain.headers
    assert page.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "access-control-allow-origin" not in stranger.headers
    assert plain.json() == page.json() == stranger.json()


def test_origin_joins_the_vary_values_in_one_header_where_the_first_was() -> None:
    assert vary_origin([(b"content-type", b"x")]) == [(b"content-type", b"x"),
                                                       (b"vary", b"Origin")]
    assert vary_origin([(b"vary", b"Accept"), (b"etag", b"e"), (b"vary", b"X-API-Key")]) == [
        (b"vary", b"Accept, X-API-Key, Origin"), (b"etag", b"e")]
