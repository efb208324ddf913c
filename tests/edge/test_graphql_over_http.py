"""``/graphql`` over real HTTP, rule by rule, per the GraphQL-over-HTTP specification.

Each test drives the gateway through httpx on a real socket. The shared ``gateway_server`` has
the playground on and the default body limit; ``strict_gateway`` is built here with
``graphiql = false`` and ``max_body_bytes = 2048``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from gateway.demo import demo_config
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from tests.conftest import UNCACHED, RunningEmulator, RunningGateway
from tests.helpers import codes

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
SMALL_LIMIT = 2048

SOURCES = "{ sources { id } }"
UNKNOWN_FIELD = "{ sources { id noSuchField } }"
PARSE_ERROR = "{ sources { id "
COERCION = "query($n: Int) { productGroups(first: $n) { totalCount } }"
TOO_MANY = "{ productGroups(first: 101) { totalCount } }"
MUTATION = "mutation { x }"


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One client for the module: a fresh one per request costs ~0.2 s (its SSL context)."""
    with httpx.Client(timeout=30) as shared:
        yield shared


@pytest.fixture(scope="module")
def url(gateway_server: RunningGateway) -> str:
    return f"{gateway_server.url}/graphql"


@pytest.fixture(scope="module")
def strict_url(emulator_servers: dict[str, RunningEmulator]) -> Iterator[str]:
    """A gateway with no playground and a 2 KiB body limit."""
    config = demo_config({kind: e.url for kind, e in emulator_servers.items()},
                         defaults=UNCACHED)
    server = config.server.model_copy(update={"graphiql": False, "max_body_bytes": SMALL_LIMIT})
    config = config.model_copy(update={"server": server})
    with ServerThread({"gateway": create_app(config)}) as servers:
        yield f"{servers.urls['gateway']}/graphql"


def media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";")[0].strip().lower()


def body_of(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object (it must be one), never a stack trace."""
    assert "Traceback" not in response.text
    assert media_type(response) in (JSON, GRAPHQL_RESPONSE), response.headers
    body = json.loads(response.text)
    assert isinstance(body, dict)
    return body


def error_body(response: httpx.Response) -> dict[str, Any]:
    """A JSON error body: ``errors[0].message`` and ``errors[0].extensions.code``."""
    body = body_of(response)
    errors = body["errors"]
    assert isinstance(errors, list) and errors
    assert isinstance(errors[0]["message"], str) and errors[0]["message"]
    assert isinstance(errors[0]["extensions"]["code"], str)
    return body


def post_payload(client: httpx.Client, url: str, payload: object, accept: str | None = None
                 ) -> httpx.Response:
    """POST any JSON value (not only a well-formed request) to ``url``."""
    headers = {"Accept": accept} if accept is not None else {}
    return client.post(url, json=payload, headers=headers)


# --- POST and content negotiation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        (JSON, JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{JSON};q=0.9, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON};q=0.4", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.4, {JSON};q=0.5", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
    ],
)
def test_post_query_answers_in_the_negotiated_media_type(
    client: httpx.Client, url: str, accept: str | None, expected: str
) -> None:
    response = post_payload(client, url, {"query": SOURCES}, accept)
    assert response.status_code == 200
    assert media_type(response) == expected
    body = body_of(response)
    assert "errors" not in body
    assert body["data"]["sources"][0] == {"id": "carecloud"}


def test_post_with_charset_in_content_type(client: httpx.Client, url: str) -> None:
    response = client.post(url, content=json.dumps({"query": SOURCES}).encode(),
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200
    assert body_of(response)["data"]["sources"][0] == {"id": "carecloud"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_post_other_content_type_is_415_with_json_error(
    client: httpx.Client, url: str, content_type: str | None
) -> None:
    content = json.dumps({"query": SOURCES}).encode()
    # httpx adds no Content-Type for raw bytes, so None sends none at all.
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(url, content=content, headers=headers)
    assert response.request.headers.get("content-type") == content_type
    assert response.status_code == 415
    body = error_body(response)
    assert codes(body) == ["UNSUPPORTED_MEDIA_TYPE"]


def test_accept_naming_no_supported_type_is_406(client: httpx.Client, url: str) -> None:
    response = post_payload(client, url, {"query": SOURCES}, "text/xml")
    assert response.status_code == 406
    assert codes(error_body(response)) == ["NOT_ACCEPTABLE"]


# --- GET ---------------------------------------------------------------------------------------


def test_get_query(client: httpx.Client, url: str) -> None:
    response = client.get(url, params={"query": "{sources{id}}"})
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert body_of(response)["data"]["sources"][0] == {"id": "carecloud"}


def test_get_with_variables_and_operation_name(client: httpx.Client, url: str) -> None:
    query = ("query Other { sources { kind } } "
             "query Groups($n: Int) { productGroups(first: $n) { nodes { id } } }")
    response = client.get(url, params={"query": query, "operationName": "Groups",
                                      "variables": json.dumps({"n": 2})}, timeout=30)
    assert response.status_code == 200
    body = body_of(response)
    assert "errors" not in body
    assert list(body["data"]) == ["productGroups"]
    assert len(body["data"]["productGroups"]["nodes"]) == 2


@pytest.mark.parametrize("accept", [None, GRAPHQL_RESPONSE])
def test_mutation_over_get_is_405(client: httpx.Client, url: str, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.get(url, params={"query": MUTATION}, headers=headers)
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert "GET" not in response.headers["allow"]
    assert codes(error_body(response)) == ["METHOD_NOT_ALLOWED"]


def test_mutation_over_get_selected_by_operation_name_is_405(
    client: httpx.Client, url: str
) -> None:
    query = "query Q { sources { id } } mutation M { x }"
    response = client.get(url, params={"query": query, "operationName": "M"})
    assert response.status_code == 405
    assert codes(error_body(response)) == ["METHOD_NOT_ALLOWED"]


def test_mutation_over_post_is_a_validation_error(client: httpx.Client, url: str) -> None:
    legacy = post_payload(client, url, {"query": MUTATION})
    assert legacy.status_code == 200
    assert media_type(legacy) == JSON
    body = body_of(legacy)
    assert "data" not in body  # no execution happened: the spec sends no `data`
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]

    modern = post_payload(client, url, {"query": MUTATION}, GRAPHQL_RESPONSE)
    assert modern.status_code == 400
    assert media_type(modern) == GRAPHQL_RESPONSE
    body = error_body(modern)
    assert "data" not in body
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(client: httpx.Client, url: str, method: str) -> None:
    response = client.request(method, url, json={"query": SOURCES})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert codes(error_body(response)) == ["METHOD_NOT_ALLOWED"]


# --- request errors: graphql-response+json → 400 with no data; json → 200 ---------------------


REQUEST_ERRORS = [
    pytest.param({"query": PARSE_ERROR}, id="parse"),
    pytest.param({"query": UNKNOWN_FIELD}, id="validation"),
    pytest.param({"query": COERCION, "variables": {"n": "abc"}}, id="variable-coercion"),
]

@pytest.mark.parametrize("payload", REQUEST_ERRORS)
def test_request_error_with_graphql_response_json_is_400_without_data(
    client: httpx.Client, url: str, payload: dict[str, Any]
) -> None:
    response = post_payload(client, url, payload, GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert media_type(response) == GRAPHQL_RESPONSE
    assert "data" not in error_body(response)


@pytest.mark.parametrize("payload", REQUEST_ERRORS)
def test_request_error_with_application_json_is_200_without_data(
    client: httpx.Client, url: str, payload: dict[str, Any]
) -> None:
    response = post_payload(client, url, payload, JSON)
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert "data" not in error_body(response)


@pytest.mark.parametrize(
    ("payload", "code", "mentions"),
    [
        pytest.param({"query": PARSE_ERROR}, "GRAPHQL_PARSE_FAILED", "Syntax Error", id="parse"),
        pytest.param({"query": UNKNOWN_FIELD}, "GRAPHQL_VALIDATION_FAILED", "noSuchField",
                     id="validation"),
        pytest.param({"query": COERCION, "variables": {"n": "abc"}}, "BAD_USER_INPUT", "$n",
                     id="variable-coercion"),
        pytest.param({"query": COERCION.replace("Int)", "Int!)"), "variables": {}},
                     "BAD_USER_INPUT", "$n", id="variable-missing"),
    ],
)
@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
def test_request_error_codes_and_messages(
    client: httpx.Client, url: str, accept: str, payload: dict[str, Any], code: str,
    mentions: str
) -> None:
    body = error_body(post_payload(client, url, payload, accept))
    assert codes(body) == [code]
    assert mentions in body["errors"][0]["message"]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
def test_resolver_error_is_200_with_data(client: httpx.Client, url: str, accept: str) -> None:
    response = post_payload(client, url, {"query": TOO_MANY}, accept)
    assert response.status_code == 200
    assert media_type(response) == accept
    body = error_body(response)
    assert "data" in body
    assert body["data"] is None
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["path"] == ["productGroups"]


# --- malformed requests: 400 with a JSON error ---------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"query": SOURCES, "variables": [1, 2]}, id="variables-list"),
        pytest.param({"query": SOURCES, "variables": '{"n": 1}'}, id="variables-string"),
        pytest.param({"query": SOURCES, "extensions": [1]}, id="extensions-list"),
        pytest.param({"query": SOURCES, "extensions": "x"}, id="extensions-string"),
        pytest.param({"variables": {}}, id="query-missing"),
        pytest.param({"query": 42}, id="query-number"),
        pytest.param({"query": None}, id="query-null"),
        pytest.param({"query": ""}, id="query-empty"),
        pytest.param({"query": SOURCES, "operationName": 7}, id="operationName-number"),
        pytest.param({"query": SOURCES, "operationName": ["Q"]}, id="operationName-list"),
        pytest.param([{"query": SOURCES}], id="body-array"),
        pytest.param("{ sources { id } }", id="body-string"),
    ],
)
@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
def test_malformed_post_body_is_400(
    client: httpx.Client, url: str, payload: object, accept: str
) -> None:
    response = post_payload(client, url, payload, accept)
    assert response.status_code == 400
    body = error_body(response)
    assert "data" not in body


@pytest.mark.parametrize("content", [b"{not json", b"", b'{"query": "{ sources { id } }"'])
def test_invalid_json_body_is_400(client: httpx.Client, url: str, content: bytes) -> None:
    response = client.post(url, content=content, headers={"Content-Type": JSON})
    assert response.status_code == 400
    assert "data" not in error_body(response)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"query": SOURCES, "variables": "not-json"}, id="variables-not-json"),
        pytest.param({"query": SOURCES, "variables": "[1]"}, id="variables-list"),
        pytest.param({"query": SOURCES, "extensions": "not-json"}, id="extensions-not-json"),
        pytest.param({"variables": "{}"}, id="query-missing"),
    ],
)
def test_malformed_get_is_400(client: httpx.Client, url: str, params: dict[str, str]) -> None:
    response = client.get(url, params=params, headers={"Accept": JSON})
    assert response.status_code == 400
    assert "data" not in error_body(response)


# --- body limit ----------------------------------------------------------------------------------


def big_payload() -> bytes:
    padding = "#" + "x" * (10 * 1024) + "\n"
    return json.dumps({"query": padding + SOURCES}).encode()


def test_body_within_the_limit_is_served(client: httpx.Client, strict_url: str) -> None:
    response = post_payload(client, strict_url, {"query": SOURCES})
    assert response.status_code == 200
    assert body_of(response)["data"]["sources"][0] == {"id": "carecloud"}


def test_oversized_body_is_413(client: httpx.Client, strict_url: str) -> None:
    response = client.post(strict_url, content=big_payload(),
                           headers={"Content-Type": JSON})
    assert response.request.headers["content-length"] == str(len(big_payload()))
    assert response.status_code == 413
    assert codes(error_body(response)) == ["PAYLOAD_TOO_LARGE"]


async def test_oversized_chunked_body_is_413(strict_url: str) -> None:
    payload = big_payload()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 512):
            yield payload[start:start + 512]

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(strict_url, content=chunks(),
                                     headers={"Content-Type": JSON})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert codes(error_body(response)) == ["PAYLOAD_TOO_LARGE"]


# --- the playground ------------------------------------------------------------------------------


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT])
def test_browser_get_serves_the_playground_when_enabled(
    client: httpx.Client, url: str, accept: str
) -> None:
    response = client.get(url, headers={"Accept": accept})
    assert response.status_code == 200
    assert media_type(response) == "text/html"
    assert "graphiql" in response.text.lower()


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT])
def test_browser_get_is_a_json_error_when_the_playground_is_off(
    client: httpx.Client, strict_url: str, accept: str
) -> None:
    response = client.get(strict_url, headers={"Accept": accept})
    assert response.status_code == 404  # "the playground is off", not a forgery suspected
    assert media_type(response) != "text/html"
    assert "<html" not in response.text.lower()
    assert codes(error_body(response)) == ["PLAYGROUND_DISABLED"]


@pytest.mark.parametrize("media", [JSON, GRAPHQL_RESPONSE])
def test_operation_name_must_pick_one_operation(client: httpx.Client, url: str,
                                                media: str) -> None:
    two = "query A { sources { id } } query B { sources { kind } }"
    for payload in ({"query": "{ sources { id } }", "operationName": "Nope"},
                    {"query": two}):
        response = post_payload(client, url, payload, media)
        assert response.status_code == (400 if media == GRAPHQL_RESPONSE else 200)
        body = error_body(response)
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    picked = post_payload(client, url, {"query": two, "operationName": "B"}, media)
    assert picked.json()["data"]["sources"][0] == {"kind": "CARECLOUD"}
