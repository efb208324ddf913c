"""The admission's pure helpers: the parameters' checks and which operation runs. (The
admission itself, the same over HTTP, SSE and WebSocket: tests/edge/test_admission.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationType, parse

from gateway.edge.admission import (
    RequestError,
    checked,
    operation_label,
    operation_problem,
    operation_type,
)
from gateway.errors import ErrorCode


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
        checked(params)
    assert refused.value.status == 400
    assert refused.value.code is ErrorCode.BAD_USER_INPUT
    assert refused.value.message.startswith(message)


def test_checked_accepts_nulls() -> None:
    params = {"query": "{a}", "operationName": None, "variables": None, "extensions": None}
    assert checked(params) is params


TWO = parse("query A { a } mutation B { b }")


@pytest.mark.parametrize(("document", "name", "error"), [
    (parse("{ a }"), None, None),
    (parse("query A { a }"), "A", None),
    (parse("query A { a }"), "B", "the document has no operation named 'B'"),
    (TWO, None, "the document has several operations: say which in `operationName`"),
    (TWO, "A", None),
    (parse("fragment F on Q { a }"), None, None),  # validation reports a missing operation
])
def test_operation_problem(document: Any, name: str | None, error: str | None) -> None:
    assert operation_problem(document, name) == error


@pytest.mark.parametrize(("name", "kind"), [
    ("A", OperationType.QUERY), ("B", OperationType.MUTATION), (None, None)])
def test_operation_type_looks_only_at_the_chosen_operation(name: str | None,
                                                           kind: OperationType | None) -> None:
    assert operation_type(TWO, name) is kind
    assert operation_type(parse("mutation { b }"), None) is OperationType.MUTATION
    assert operation_type(parse("subscription { c }"), None) is OperationType.SUBSCRIPTION



@pytest.mark.parametrize(("document", "name", "label"), [
    (parse("query A { a }"), None, "A"),
    (parse("{ a }"), None, "(anonymous)"),
    (TWO, "B", "B"),
    (TWO, None, "-"),
    (TWO, "Invented", "-"),  # a name the document does not define labels nothing
])
def test_operation_label_is_a_name_the_document_defines(document: Any, name: str | None,
                                                         label: str) -> None:
    assert operation_label(document, name) == label


def test_checked_refuses_a_long_operation_name() -> None:
    with pytest.raises(RequestError) as refused:
        checked({"query": "{a}", "operationName": "N" * 257})
    assert refused.value.code is ErrorCode.BAD_USER_INPUT
    assert "at most 256 characters" in refused.value.message
