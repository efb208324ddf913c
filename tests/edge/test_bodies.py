"""How results and errors are written. (Over HTTP: tests/edge/test_graphql_over_http.py.)"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from graphql import GraphQLError

from gateway.edge.admission import RequestError
from gateway.edge.bodies import formatted, json_error, result_response
from gateway.edge.request import GRAPHQL_RESPONSE, JSON
from gateway.errors import ErrorCode


def body(response: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(response.body)
    return decoded


@pytest.mark.parametrize(("media_type", "status"), [(JSON, 200), (GRAPHQL_RESPONSE, 400)])
def test_a_request_error_has_no_data_key(media_type: str, status: int) -> None:
    response = result_response(None, [GraphQLError("Syntax Error: nope")], None, media_type,
                               ErrorCode.GRAPHQL_PARSE_FAILED)
    assert response.status_code == status
    assert body(response) == {"errors": [{"message": "Syntax Error: nope", "extensions": {
        "code": "GRAPHQL_PARSE_FAILED"}}]}


def test_an_execution_error_keeps_data_and_extensions() -> None:
    error = GraphQLError("boom", path=["a"], extensions={"code": "UPSTREAM_TIMEOUT"})
    response = result_response({"a": None}, [error], {"stale": []}, GRAPHQL_RESPONSE,
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
    assert formatted(error, ErrorCode.GRAPHQL_VALIDATION_FAILED)["extensions"]["code"] == code


def test_json_error_carries_status_code_and_headers() -> None:
    response = json_error(RequestError(405, "use GET or POST", code=ErrorCode.METHOD_NOT_ALLOWED,
                                       headers={"Allow": "GET, POST"}))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert body(response) == {"errors": [{"message": "use GET or POST",
                                          "extensions": {"code": "METHOD_NOT_ALLOWED"}}]}
