"""What ``/graphql`` answers: result and error bodies, their size limit, and the one response
class that sends them.

* A result's body per the GraphQL-over-HTTP spec: a request error (parse, validation, variable
  coercion: no execution happened) has no ``data`` key, and with
  ``application/graphql-response+json`` answers 400; otherwise 200.
* Every error carries a stable ``extensions.code`` (:func:`coded`), and at most
  :data:`MAX_ERROR_TEXT` characters of what the client wrote (:func:`bounded`).
* An answer longer than ``[limits] max_response_bytes`` is replaced by one
  ``RESPONSE_TOO_LARGE`` error (:func:`within`).
* A refusal before GraphQL (:class:`~gateway.edge.admission.RequestError`) is a JSON error body
  with its status and headers (:func:`json_error`).

:class:`Reply` writes its headers as bytes once: a response-cache hit is all headers and one copy
of bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.types import Receive, Scope, Send

from gateway.edge.admission import RequestError
from gateway.edge.persisted import PersistedError
from gateway.edge.request import GRAPHQL_RESPONSE, JSON
from gateway.edge.sse import COMPLETE, EVENT_STREAM, EventStream, next_frame
from gateway.errors import ErrorCode

__all__ = ["MAX_ERROR_TEXT", "Reply", "bounded", "coded", "error_payload", "formatted",
           "is_request_error", "json_error", "persisted_error", "result_body", "result_fields",
           "result_response",
           "too_large", "too_large_body", "validated", "within"]

# Characters of an error's message and of each step of its path that are sent: what a client
# wrote (a name, a variable's value) is echoed up to this much.
MAX_ERROR_TEXT = 512
_CONTENT_TYPES = {media_type: f"{media_type}; charset=utf-8".encode()
                  for media_type in (JSON, GRAPHQL_RESPONSE)}


class Reply:
    """A complete response: status, headers (as bytes, built once) and body."""

    __slots__ = ("body", "raw_headers", "status_code")

    def __init__(self, body: bytes = b"", *, status: int = 200, media_type: str | None = JSON,
                 headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status
        self.body = body
        self.raw_headers: list[tuple[bytes, bytes]] = []
        if status != 304:
            self.raw_headers.append((b"content-length", str(len(body)).encode()))
        if media_type is not None:
            self.raw_headers.append((b"content-type", _CONTENT_TYPES.get(media_type)
                                     or f"{media_type}; charset=utf-8".encode()))
        for name, value in (headers or {}).items():
            self.header(name, value)

    @classmethod
    def prepared(cls, body: bytes, raw_headers: list[tuple[bytes, bytes]]) -> Reply:
        """A 200 with headers written already (a copy of them is taken)."""
        reply = cls.__new__(cls)
        reply.status_code, reply.body, reply.raw_headers = 200, body, list(raw_headers)
        return reply

    @property
    def headers(self) -> dict[str, str]:
        """The headers by lower-case name: a copy, to read (:meth:`header` adds one)."""
        return {name.decode("latin-1"): value.decode("latin-1")
                for name, value in self.raw_headers}

    def header(self, name: str, value: str) -> None:
        self.raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


def result_response(data: Any, errors: list[GraphQLError] | None,
                    extensions: dict[str, Any] | None, media_type: str,
                    request_error_code: ErrorCode, codes: list[str] | None = None, *,
                    max_bytes: int | None = None) -> Reply | EventStream:
    """The answer's response; the codes of its errors are added to ``codes``. As an event
    stream: one ``next`` event (within ``max_bytes``), then ``complete``."""
    body = result_body(data, errors, extensions, request_error_code, codes)
    if media_type == EVENT_STREAM:
        return EventStream(_one_event(body if max_bytes is None else limited(body, max_bytes)))
    status = 400 if is_request_error(data, errors) and media_type == GRAPHQL_RESPONSE else 200
    return Reply(body, status=status, media_type=media_type)


def result_body(data: Any, errors: list[GraphQLError] | None,
                extensions: dict[str, Any] | None, request_error_code: ErrorCode,
                codes: list[str] | None = None) -> bytes:
    """A result's JSON; the codes of its errors are added to ``codes``."""
    return orjson.dumps(result_fields(data, errors, extensions, request_error_code, codes))


def result_fields(data: Any, errors: list[GraphQLError] | None,
                  extensions: dict[str, Any] | None, request_error_code: ErrorCode,
                  codes: list[str] | None = None) -> dict[str, Any]:
    """A result's body, before JSON; the codes of its errors are added to ``codes``."""
    body: dict[str, Any] = {}
    # No execution happened (parse, validation, variable coercion): the spec sends no `data`.
    if not is_request_error(data, errors):
        body["data"] = data
    if errors:
        body["errors"] = [formatted(e, request_error_code) for e in errors]
        if codes is not None:
            codes += [error["extensions"]["code"] for error in body["errors"]]
    if extensions:
        body["extensions"] = extensions
    return body


def is_request_error(data: Any, errors: list[GraphQLError] | None) -> bool:
    return data is None and bool(errors) and all(e.path is None for e in errors or ())


def validated(data: Any, errors: list[GraphQLError] | None) -> bool:
    """Whether the document passed parsing and validation (execution began): no request
    error."""
    return not is_request_error(data, errors)


async def _one_event(body: bytes) -> AsyncIterator[bytes]:
    yield next_frame(body)
    yield COMPLETE


def limited(body: bytes, max_bytes: int) -> bytes:
    """``body``, or a ``RESPONSE_TOO_LARGE`` error in its place when it is longer."""
    return body if len(body) <= max_bytes else too_large_body(max_bytes)


def within(reply: Reply, max_bytes: int, media_type: str) -> Reply:
    """The reply, or a ``RESPONSE_TOO_LARGE`` error in its place when its body is longer than
    ``max_bytes`` (the work is done, but no client gets an answer that size)."""
    if len(reply.body) <= max_bytes:
        return reply
    return Reply(too_large_body(max_bytes), media_type=media_type)


def too_large_body(max_bytes: int) -> bytes:
    message, extensions = too_large(max_bytes)
    return orjson.dumps({"data": None, "errors": [{"message": message,
                                                   "extensions": extensions}]})


def too_large(max_bytes: int) -> tuple[str, dict[str, Any]]:
    """The message and extensions of an answer over ``max_bytes``."""
    return (f"the answer is larger than {max_bytes} bytes ([limits] max_response_bytes): ask "
            "for fewer or smaller lists", {"code": ErrorCode.RESPONSE_TOO_LARGE.value,
                                           "maxResponseBytes": max_bytes})


def formatted(error: GraphQLError, request_error_code: ErrorCode) -> dict[str, Any]:
    """The error as the spec formats it, with a stable ``extensions.code`` always."""
    return coded(dict(error.formatted), request_error_code)


def coded(formatted: dict[str, Any], request_error_code: ErrorCode) -> dict[str, Any]:
    """A formatted error with its ``extensions.code``: when it has none, an error of execution
    (with a ``path``) is unexpected, one of variable coercion is the client's, and any other
    came before execution (``request_error_code``). Its message and path are bounded
    (:func:`bounded`): they may echo what the client wrote."""
    formatted["message"] = bounded(str(formatted.get("message", "")))
    if formatted.get("path"):
        formatted["path"] = [bounded(step) if isinstance(step, str) else step
                             for step in formatted["path"]]
    extensions = formatted.get("extensions") or {}
    if "code" not in extensions:
        if formatted.get("path") is not None:
            code = ErrorCode.INTERNAL_SERVER_ERROR
        elif str(formatted.get("message", "")).startswith("Variable '$"):
            code = ErrorCode.BAD_USER_INPUT  # variable coercion
        else:
            code = request_error_code
        formatted["extensions"] = {**extensions, "code": code.value}
    return formatted


def bounded(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """``text``, or its first ``limit`` characters and how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def error_payload(error: RequestError | PersistedError | GraphQLError) -> dict[str, Any]:
    """A refusal as one formatted GraphQL error (a WebSocket operation's ``error`` message)."""
    if isinstance(error, GraphQLError):
        return formatted(error, ErrorCode.GRAPHQL_PARSE_FAILED)
    extensions: dict[str, Any] = {"code": error.code.value}
    retry_after = error.headers.get("Retry-After") if isinstance(error, RequestError) else None
    if retry_after is not None:
        extensions["retryAfter"] = int(retry_after)
    return {"message": bounded(error.message), "extensions": extensions}


def persisted_error(error: PersistedError, media_type: str) -> Reply | EventStream:
    if error.status is not None:
        return json_error(RequestError(error.status, error.message, code=error.code))
    return result_response(None, [error.graphql_error()], None, media_type, error.code)


def json_error(error: RequestError) -> Reply:
    body = {"errors": [{"message": bounded(error.message),
                        "extensions": {"code": error.code.value}}]}
    return Reply(orjson.dumps(body), status=error.status, headers=error.headers)
