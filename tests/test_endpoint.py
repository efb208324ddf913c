"""The endpoint's pure helpers: media-type negotiation, request checks, operation choice and
how results and errors are written. (Their behaviour over HTTP: tests/http.)"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from graphql import GraphQLError, OperationType, parse

from gateway.endpoint import (
    GRAPHQL_RESPONSE,
    JSON,
    RequestError,
    _checked,
    _formatted,
    _json_error,
    _operation_error,
    _result_response,
    negotiate,
    operation_type,
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


@pytest.mark.parametrize(("params", "message"), [
    ({}, "`query` must be a non-empty string"),
    ({"query": "  "}, "`query` must be a non-empty string"),
    ({"query": 5}, "`query` must be a non-empty string"),
    ({"query": "{a}", "operationName": 3}, "`operationName` must be a string or null"),
    ({"query": "{a}", "variables": [1]}, "`variables` must be a map"),
    ({"query": "{a}", "extensions": "x"}, "`extensions` must be a map"),
])
def test_checked_refuses_malformed_parameters(params: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as refused:
        _checked(params)
    assert refused.value.status == 400
    assert refused.value.code is ErrorCode.BAD_USER_INPUT
    assert refused.value.message.startswith(message)


def test_checked_accepts_nulls() -> None:
    params = {"query": "{a}", "operationName": None, "variables": None, "extensions": None}
    assert _checked(params) is params


TWO = parse("query A { a } mutation B { b }")


@pytest.mark.parametrize(("document", "name", "error"), [
    (parse("{ a }"), None, None),
    (parse("query A { a }"), "A", None),
    (parse("query A { a }"), "B", "the document has no operation named 'B'"),
    (TWO, None, "the document has several operations: say which in `operationName`"),
    (TWO, "A", None),
    (parse("fragment F on Q { a }"), None, None),  # validation reports a missing operation
])
def test_operation_error(document: Any, name: str | None, error: str | None) -> None:
    assert _operation_error(document, name) == error


@pytest.mark.parametrize(("name", "kind"), [
    ("A", OperationType.QUERY), ("B", OperationType.MUTATION), (None, None)])
def test_operation_type_looks_only_at_the_chosen_operation(name: str | None,
                                                           kind: OperationType | None) -> None:
    assert operation_type(TWO, name) is kind
    assert operation_type(parse("mutation { b }"), None) is OperationType.MUTATION
    assert operation_type(parse("subscription { c }"), None) is OperationType.SUBSCRIPTION


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
