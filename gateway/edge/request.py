"""One HTTP request to ``/graphql`` read into one typed value: :class:`GraphQLRequest`.

Read from the ASGI scope and body, in this order, each refusal a :class:`RequestError` before any
GraphQL work:

* the method: ``GET`` or ``POST`` (else 405 with ``Allow``);
* with CSRF prevention (Apollo Server's ``csrfPrevention``), a ``GET`` must carry a header a
  cross-site form or image cannot send: ``Apollo-Require-Preflight`` or
  ``X-Apollo-Operation-Name`` (non-empty), or a ``Content-Type`` other than a form's three
  (else 400 ``PREFLIGHT_REQUIRED``). A ``POST`` must be ``application/json``, which a browser
  always preflights;
* ``Accept`` chooses the media type (:func:`negotiate`; 406 when it allows none);
* the parameters: a ``GET``'s query string (``variables`` and ``extensions`` as JSON), or a
  ``POST``'s body, ``application/json`` (else 415), a JSON object (else 400) of at most
  ``max_body_bytes`` (else 413, before reading it when ``Content-Length`` says so).

A browser's ``GET`` of the page (``Accept: text/html``, no ``query``) is not a GraphQL request:
:func:`wants_page` says so first. Headers are read into a dict once (the first of repeated names
wins, as in Starlette): a request's headers are looked up about ten times on its way.

Every request has an id (:func:`request_id`): the client's ``X-Request-ID`` when it is 1 to 128
letters, digits or ``-_.:@/+=`` (anything else is replaced, never echoed), else a new one.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import Receive, Scope

from gateway.edge.admission import RequestError
from gateway.edge.sse import EVENT_STREAM
from gateway.errors import ErrorCode

__all__ = ["DEFER_SPEC", "GRAPHQL_RESPONSE", "INCREMENTAL_SPEC", "JSON", "MULTIPART",
           "ClientLeft", "GraphQLRequest", "RequestReader", "headers_of", "negotiate",
           "negotiated", "request_id", "wants_page"]

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# An answer in parts (@defer, @stream): multipart/mixed in one of two formats, named by a
# parameter of the type (a bare multipart/mixed, GraphiQL's, gets the first).
MULTIPART = "multipart/mixed"
DEFER_SPEC = "deferSpec=20220824"  # Apollo Router's, Apollo Client's Defer20220824Handler
INCREMENTAL_SPEC = "incrementalSpec=v0.2"  # graphql-js 17's, GraphQL17Alpha9Handler
DEFAULT_MAX_BODY = 1_000_000
# Content types a cross-site form can send without a CORS preflight (the Fetch standard's
# CORS-safelisted request header values of Content-Type).
SIMPLE_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data",
                                  "text/plain"})
PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name")
# A client's X-Request-ID is kept when it is short and plain (it reaches logs and upstreams).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
PROCESS_ID = uuid.uuid4().hex[:16]
_REQUEST_NUMBERS = itertools.count(1)
# What `Accept` may name, and what it then chooses (with its rank in a tie). An explicit
# graphql-response+json wins over json; wildcards mean the legacy json; an event stream is asked
# for by name, and then wins a tie (graphql-sse's clients).
_CANDIDATES = {EVENT_STREAM: (EVENT_STREAM, 3), GRAPHQL_RESPONSE: (GRAPHQL_RESPONSE, 2),
               JSON: (JSON, 1), "application/*": (JSON, 0), "*/*": (JSON, 0)}


class ClientLeft(Exception):
    """The client disconnected before its answer: nothing is sent."""


@dataclass(slots=True)
class GraphQLRequest:
    """A well-formed GraphQL request over HTTP, before admission."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    media_type: str  # what the answer is written as (negotiated)
    params: dict[str, Any]  # query, operationName, variables, extensions (not yet checked)
    address: str  # the client's address ("-" when the server does not say)
    # The format of an answer in parts the client takes (DEFER_SPEC or INCREMENTAL_SPEC), or
    # None: @defer and @stream are ignored, the answer comes whole.
    incremental: str | None = None

    @property
    def streaming(self) -> bool:
        return self.media_type == EVENT_STREAM


class RequestReader:
    """Reads :class:`GraphQLRequest` values within a body limit, with or without CSRF
    prevention."""

    def __init__(self, *, max_body_bytes: int = DEFAULT_MAX_BODY,
                 csrf_prevention: bool = False) -> None:
        self.max_body_bytes = max_body_bytes
        self.csrf_prevention = csrf_prevention

    async def read(self, scope: Scope, receive: Receive, headers: dict[str, str]
                   ) -> GraphQLRequest:
        method = scope["method"]
        if method not in ("GET", "POST"):
            raise RequestError(405, f"{method} is not supported: use GET or POST",
                               code=ErrorCode.METHOD_NOT_ALLOWED, headers={"Allow": "GET, POST"})
        if method == "GET" and self.csrf_prevention:
            _require_preflight(headers)
        media_type, parts = negotiated(headers.get("accept", ""))
        if method == "GET":
            params = query_params(scope)
            for key in ("variables", "extensions"):
                if key in params:
                    params[key] = _json(params[key], f"`{key}` is not valid JSON")
        else:
            params = await self._posted(receive, headers)
        client = scope.get("client")
        return GraphQLRequest(method, scope["path"], headers, media_type, params,
                              client[0] if client else "-", parts)

    async def _posted(self, receive: Receive, headers: Mapping[str, str]) -> dict[str, Any]:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != JSON:
            raise RequestError(415, "send the request body as application/json",
                               code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                               headers={"Accept-Post": JSON})
        params = _json(await self._body(receive, headers), "the request body is not valid JSON")
        if not isinstance(params, dict):
            raise RequestError(400, "the request body must be a JSON object")
        return params

    async def _body(self, receive: Receive, headers: Mapping[str, str]) -> bytes:
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large()
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientLeft
            chunk: bytes = message.get("body", b"")
            body += chunk
            if len(body) > self.max_body_bytes:
                raise self._too_large()
            if not message.get("more_body", False):
                return body

    def _too_large(self) -> RequestError:
        return RequestError(413, f"the request body is larger than {self.max_body_bytes} bytes",
                            code=ErrorCode.PAYLOAD_TOO_LARGE)


def headers_of(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (the first of repeated names wins)."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


def query_params(scope: Scope) -> dict[str, Any]:
    """The query string's parameters (the last of repeated names wins, as in Starlette)."""
    return dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))


def wants_page(scope: Scope, headers: Mapping[str, str]) -> bool:
    """A browser opening ``/graphql``: a ``GET`` of HTML without a ``query``."""
    return (scope["method"] == "GET" and "text/html" in headers.get("accept", "").lower()
            and "query" not in query_params(scope))


def request_id(sent: str | None) -> str:
    """The client's request id when it is acceptable, else a new one: this process's random
    prefix and a counter (unique without a random draw per request)."""
    if sent and REQUEST_ID.fullmatch(sent):
        return sent
    return f"{PROCESS_ID}{next(_REQUEST_NUMBERS):016x}"  # 32 hex digits, as a UUID's


def negotiate(accept: str) -> str:
    """The response media type for an ``Accept`` header (406 when it allows neither)."""
    return negotiated(accept)[0]


def negotiated(accept: str) -> tuple[str, str | None]:
    """The response media type for an ``Accept`` header (406 when it allows neither), and the
    format of an answer in parts it takes (None: the answer comes whole). A client that takes
    only answers in parts gets a whole answer as JSON (as Apollo Router does); an event
    stream's parts are ``next`` events in graphql-js 17's format unless it names the other."""
    if not accept.strip():
        return JSON, None
    accepted = _accepted(accept)
    parts = _parts_format(accepted)
    best: tuple[float, int, str] | None = None
    for media, _, quality in accepted:
        candidate = _CANDIDATES.get(media)
        if candidate is not None:
            chosen, rank = candidate
            if best is None or (quality, rank) > best[:2]:
                best = (quality, rank, chosen)
    if best is None and parts is not None:
        return JSON, parts
    if best is None:
        raise RequestError(406, f"cannot answer in any type `Accept` allows: use {GRAPHQL_RESPONSE}"
                                f", {JSON} or {EVENT_STREAM} (and for answers in parts, "
                                f"{MULTIPART};{DEFER_SPEC} or {MULTIPART};{INCREMENTAL_SPEC})",
                           code=ErrorCode.NOT_ACCEPTABLE)
    if best[2] == EVENT_STREAM:
        return EVENT_STREAM, parts or INCREMENTAL_SPEC
    return best[2], parts


def _parts_format(accepted: list[tuple[str, list[str], float]]) -> str | None:
    """The format of an answer in parts the media ranges take (the graphql-js 17 one when
    they take both equally), or None."""
    best: tuple[float, int, str] | None = None
    for media, options, quality in accepted:
        if media != MULTIPART:
            continue
        spec = INCREMENTAL_SPEC if INCREMENTAL_SPEC.lower() in options else (
            DEFER_SPEC if DEFER_SPEC.lower() in options or not any(
                o.startswith(("deferspec=", "incrementalspec=")) for o in options) else None)
        if spec is not None:
            rank = 1 if spec == INCREMENTAL_SPEC else 0
            if best is None or (quality, rank) > best[:2]:
                best = (quality, rank, spec)
    return None if best is None else best[2]


def _accepted(accept: str) -> list[tuple[str, list[str], float]]:
    """``Accept``'s media ranges allowed (quality above 0): the type, its other parameters
    (lower-case, no spaces), its quality."""
    accepted = []
    for item in accept.split(","):
        media, *options = (part.strip() for part in item.split(";"))
        quality = 1.0
        others = []
        for option in options:
            name, _, value = option.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
            else:
                others.append(f"{name.strip()}={value.strip().strip(chr(34))}".lower())
        if quality > 0:
            accepted.append((media.lower(), others, quality))
    return accepted


def _require_preflight(headers: Mapping[str, str]) -> None:
    """Apollo Server's CSRF prevention, for a GET: a header a simple request cannot carry."""
    content_type = headers.get("content-type")
    if content_type is not None:
        essence = content_type.split(";")[0].strip().lower()
        if essence and essence not in SIMPLE_CONTENT_TYPES:
            return
    if any(headers.get(name, "").strip() for name in PREFLIGHT_HEADERS):
        return
    raise RequestError(
        400, "this GET query may be a cross-site request forgery: send it with the header "
             "`Apollo-Require-Preflight: true` (or `X-Apollo-Operation-Name`, or a "
             "`Content-Type` other than a form's), or as a POST of application/json",
        code=ErrorCode.PREFLIGHT_REQUIRED)


def _json(raw: str | bytes, message: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError(400, message) from None
