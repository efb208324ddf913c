"""The endpoint's pure helpers: media-type negotiation and how results and errors are written.
(Their behaviour over HTTP: tests/http.)"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from graphql import GraphQLError

from gateway.admission import RequestError
from gateway.endpoint import (
    GRAPHQL_RESPONSE,
    JSON,
    _formatted,
    _json_error,
    _result_response,
    negotiate,
)
from gateway.errors import ErrorCode
from gateway.sse import EVENT_STREAM


@pytest.mark.parametrize(("accept", "chosen"), [
    ("", JSON),
    ("   ", JSON),
    ("*/*", JSON),
    ("application/*", JSON),
    ("application/json", JSON),
    (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
    (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),  # the explicit one wins a tie
    (f"application/json;q=1, {GRAPHQL_RESPONSE};q=0.5", JSON),
    (f"{GRAPHQL_RESPONSE};q=0, application/json", JSON),
    ("text/html, */*;q=0.8", JSON),
    ("APPLICATION/JSON", JSON),
    (f"{GRAPHQL_RESPONSE};q=bogus, application/json;q=0.1", JSON),
    ("text/event-stream", EVENT_STREAM),  # GraphQL over SSE
    (f"application/json, {EVENT_STREAM}", EVENT_STREAM),  # named: it wins a tie
    (f"{EVENT_STREAM};q=0.5, application/json", JSON),
])
def test_negotiate_picks_the_media_type(accept: str, chosen: str) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "application/json;q=0"])
def test_negotiate_refuses_what_it_cannot_answer(accept: str) -> None:
    with pytest.raises(RequestError) as refused:
        negotiate(accept)
    assert (refused.value.status, refused.value.code) == (406, ErrorCode.NOT_ACCEPTABLE)


def body(response: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(response.body)
    return decoded


@pytest.mark.parametrize(("media_type", "status"), [(JSON, 200), (GRAPHQL_RESPONSE, 400)])
def test_a_request_error_has_no_data_key(media_type: str, status: int) -> None:
    response = _result_response(None, [GraphQLError("Syntax Error: nope")], None, media_type,
                                ErrorCode.GRAPHQL_PARSE_FAILED)
    assert response.status_code == status
    assert body(response) == {"errors": [{"message": "Syntax Error: nope", "extensions": {
        "code": "GRAPHQL_PARSE_FAILED"}}]}


def test_an_execution_error_keeps_data_and_extensions() -> None:
    error = GraphQLError("boom", path=["a"], extensions={"code": "UPSTREAM_TIMEOUT"})
    response = _result_response({"a": None}, [error], {"stale": []}, GRAPHQL_RESPONSE,
                                ErrorCode.GRAPHQL_VALIDATION_FAILED)
    assert response.status_code == 200
    assert body(response) == {
        "data": {"a": None},
        "errors": [{"message": "boom", "path": ["a"], "extensions": {"code": "UPSTREAM_TIMEOUT"}}],
        "extensions": {"stale": []}}


@pytest.mark.parametrize(("error", "code"), [
    (GraphQLError("boom", path=["a"]), "INTERNAL_SERVER_ERROR"),
    (GraphQLError("Variable '$x' got invalid value"), "BAD_USER_INPUT"),
    (GraphQLError("Cannot query field 'x'"), "GRAPHQL_VALIDATION_FAILED"),
    (GraphQLError("x", extensions={"code": "UPSTREAM_TIMEOUT"}), "UPSTREAM_TIMEOUT"),
])
def test_formatted_always_has_a_code(error: GraphQLError, code: str) -> None:
    assert _formatted(error, ErrorCode.GRAPHQL_VALIDATION_FAILED)["extensions"]["code"] == code


def test_json_error_carries_status_code_and_headers() -> None:
    response = _json_error(RequestError(405, "use GET or POST", code=ErrorCode.METHOD_NOT_ALLOWED,
                                        headers={"Allow": "GET, POST"}))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert body(response) == {"errors": [{"message": "use GET or POST",
                                          "extensions": {"code": "METHOD_NOT_ALLOWED"}}]}
