"""``/graphql`` over HTTP, per the GraphQL-over-HTTP specification: the order of the edge's
steps, each done by the module named.

1. The request is read (:mod:`gateway.edge.request`): method, CSRF prevention, ``Accept``,
   parameters; a browser's ``GET`` of HTML gets the playground instead, when it is on.
2. The client is identified and the request admitted (:mod:`gateway.edge.admission`): failed
   authentications, credentials, request rate, parameters, variables, the persisted operation.
3. The whole-response cache may answer (:mod:`gateway.edge.caching`): the key computed once.
4. The operation is admitted: parsed in its turn, one operation of a type HTTP runs (no
   mutation over ``GET``: 405; a subscription only as ``text/event-stream``: 406), validated
   with its cost and answer-size price, within the client's cost budget.
5. A subscription streams (:mod:`gateway.edge.streams`); a query or mutation executes in a
   context of its own (:mod:`gateway.edge.contexts`), cancelled with every resolver and upstream
   call it waits for if the client disconnects (an upstream call shared with another request
   goes on for that one), and its client is charged the upstream calls it made.
6. The answer is written (:mod:`gateway.edge.bodies`) within ``[limits] max_response_bytes``,
   kept in the response cache when it may be, and sent with its request id. An answer in
   parts (``@defer``, ``@stream``, for a client whose ``Accept`` takes ``multipart/mixed``, or
   an event stream) is written part by part as each is ready (:mod:`gateway.edge.parts`):
   the client is charged, and the exchange finished, after the last; such an answer is never
   kept, and a response-cache hit is sent to such a client as one part.

``extensions.cost`` (``[server] cost_extension``: always, or when the request sends
``X-Gateway-Cost: 1``) adds ``actual``, what the request cost each source (upstream requests,
cache hits, time), and ``estimated``, the query-safety rule's price; such an answer is the
request's own, never answered from nor kept in the response cache. Every error body is JSON,
never plain text or a stack trace. What is logged, counted and traced of a request:
:mod:`gateway.edge.observe`. WebSockets on the same path: :mod:`gateway.edge.websocket`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from graphql import GraphQLError, OperationType
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry import Schema

from gateway.access.auth import Client
from gateway.edge.admission import (
    Admission,
    DocumentRefused,
    Operation,
    RequestError,
    operation_label,
)
from gateway.edge.bodies import (
    Reply,
    json_error,
    persisted_error,
    result_fields,
    result_response,
    validated,
    within,
)
from gateway.edge.caching import Caching
from gateway.edge.contexts import Contexts
from gateway.edge.observe import Exchange
from gateway.edge.parts import PartsWriter, multipart_type, one_part
from gateway.edge.persisted import PersistedError
from gateway.edge.request import ClientLeft, GraphQLRequest, RequestReader, wants_page
from gateway.edge.sse import EVENT_STREAM, EventStream
from gateway.edge.streams import EventStreams
from gateway.errors import ErrorCode
from gateway.graph.context import GatewayContext
from gateway.scope import RequestScope

__all__ = ["GraphQLEndpoint"]

# The name of a document's first operation, read without parsing (a response-cache hit).
LEADING_NAME = re.compile(r"\s*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")
T = TypeVar("T")
Answer = Reply | EventStream | Response


class GraphQLEndpoint:
    """The ASGI app behind ``/graphql`` (HTTP; WebSockets have their own)."""

    def __init__(self, schema: Schema, *, reader: RequestReader, admission: Admission,
                 contexts: Contexts, caching: Caching, streams: EventStreams,
                 playground: Callable[[], Response] | None = None,
                 cost_extension: str = "off", max_response_bytes: int) -> None:
        self.schema = schema
        self.reader = reader
        self.admission = admission
        self.contexts = contexts
        self.caching = caching
        self.streams = streams
        self.playground = playground
        self.cost_extension = cost_extension
        self.max_response_bytes = max_response_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange.of(scope)
        try:
            answer = await self._answer(scope, receive, exchange)
        except RequestError as exc:
            exchange.codes.append(exc.code.value)
            answer = json_error(exc)
        except ClientLeft:
            exchange.outcome = "cancelled"
            return
        if isinstance(answer, Reply):
            answer.header("X-Request-ID", exchange.request_id)
        else:
            answer.headers["X-Request-ID"] = exchange.request_id
        await answer(scope, receive, send)
        if isinstance(answer, EventStream) and answer.client_left:
            exchange.outcome = "cancelled"  # the usual end of a subscription, but logged

    async def _answer(self, scope: Scope, receive: Receive, exchange: Exchange) -> Answer:
        headers = exchange.headers
        if wants_page(scope, headers):
            return self._page(exchange)
        request = await self.reader.read(scope, receive, headers)
        client = await self.admission.identify(headers, address=request.address)
        params = request.params
        try:
            persisted = await self.admission.read(client, params)
        except GraphQLError as error:  # the variables are over a limit
            return result_response(None, [error], None, request.media_type,
                                   ErrorCode.GRAPHQL_PARSE_FAILED)
        except PersistedError as exc:
            return persisted_error(exc, request.media_type)
        exchange.query = params.get("query") or ""
        costed = self.cost_extension == "always" or (
            self.cost_extension == "header" and headers.get("x-gateway-cost") == "1")
        credentials = self.contexts.credentials(headers)
        private = bool(client.id or credentials)  # an answer of this client's own
        key = None if costed or request.streaming else self.caching.key(
            request, persisted, client, credentials)
        if key is not None:
            hit = await self.caching.hit(key, request, private=private)
            if hit is not None:
                exchange.operation = params.get("operationName") or _leading_name(exchange.query)
                exchange.outcome = "ok"
                return hit if request.incremental is None else _one_part(hit, request.incremental)
        try:
            operation = await self.admission.operation(client, params, persisted, runs=(
                functools.partial(_runs_over_http, request.method, request.streaming)))
        except PersistedError as exc:
            return persisted_error(exc, request.media_type)
        except GraphQLError as error:
            return result_response(None, [error], None, request.media_type,
                                   ErrorCode.GRAPHQL_PARSE_FAILED, exchange.codes)
        except DocumentRefused as refused:
            exchange.operation = refused.label
            return result_response(None, refused.errors, None, request.media_type,
                                   ErrorCode.GRAPHQL_VALIDATION_FAILED, exchange.codes)
        exchange.operation = operation_label(operation.document, operation.name)
        if operation.kind is OperationType.SUBSCRIPTION:
            stream = self.contexts.subscription(headers, exchange.request_id, client, operation,
                                                last_event_id=headers.get("last-event-id"))
            exchange.scope = stream.scope
            return await self.streams.subscribe(params, stream, exchange)
        context = self.contexts.request(headers, exchange.request_id, credentials)
        context.incremental = request.incremental is not None
        exchange.scope = context.scope
        try:
            result = await _unless_disconnected(receive, self.schema.execute(
                params["query"], variable_values=params.get("variables"),
                context_value=context, operation_name=params.get("operationName")))
        except ClientLeft:
            if context.later is not None:
                context.later.close()
            raise
        finally:  # a client that left is charged what its request made too
            await self.admission.charge(client, context.scope.upstream_requests)
        exchange.outcome = ("ok" if not result.errors else
                            "error" if result.data is None else "partial")
        if persisted.register and validated(result.data, result.errors):
            await self.admission.register(client, persisted)
        extensions = result.extensions
        if costed:
            extensions = {**(extensions or {}), "cost": _cost(context.scope, operation)}
        if context.later is not None and request.incremental is not None:
            return self._in_parts(result.data, result.errors, extensions, context, request,
                                  client, exchange)
        answer = result_response(result.data, result.errors, extensions, request.media_type,
                                 ErrorCode.GRAPHQL_VALIDATION_FAILED, exchange.codes,
                                 max_bytes=self.max_response_bytes)
        if isinstance(answer, EventStream):
            return answer
        reply = within(answer, self.max_response_bytes, request.media_type)
        if reply is not answer:  # too large: nothing of it is kept
            return reply
        if key is not None and not result.errors and not (result.extensions or {}).get("stale"):
            kept = await self.caching.keep(key, reply, operation, context.scope, request,
                                           private=private)
            if kept is not None:
                return kept
        return _no_store(reply, request)

    def _in_parts(self, data: Any, errors: list[GraphQLError] | None,
                  extensions: dict[str, Any] | None, context: GatewayContext,
                  request: GraphQLRequest, client: Client, exchange: Exchange) -> EventStream:
        """The answer in parts: the first now, the others as they are ready; the client is
        charged what the later parts made once they are out (or it left)."""
        later, spec = context.later, request.incremental
        assert later is not None and spec is not None
        charged = context.scope.upstream_requests

        def sent() -> None:
            exchange.first_part = time.perf_counter() - exchange.started

        async def finished() -> None:
            await self.admission.charge(client, context.scope.upstream_requests - charged)
            if exchange.codes and exchange.outcome == "ok":
                exchange.outcome = "partial"

        writer = PartsWriter(spec, exchange.loggable_codes, max_bytes=self.max_response_bytes,
                             sent=sent, finished=finished)
        first = writer.first(result_fields(data, errors, extensions,
                                           ErrorCode.GRAPHQL_VALIDATION_FAILED, exchange.codes),
                             later.first)
        if request.media_type == EVENT_STREAM:
            return EventStream(writer.events(first, later))
        return EventStream(writer.multipart(first, later), keep_alive=None,
                           media_type=multipart_type(spec))

    def _page(self, exchange: Exchange) -> Response:
        """A browser opening ``/graphql``: the playground, or 404 when it is off."""
        exchange.graphql = False
        if self.playground is None:
            raise RequestError(404, "the playground is off here ([server] graphiql = false): "
                                    "send GraphQL requests as a POST of application/json",
                               code=ErrorCode.PLAYGROUND_DISABLED)
        return self.playground()


def _cost(scope: RequestScope, operation: Operation) -> dict[str, Any]:
    """``extensions.cost``: what the request cost each source, and its estimated price."""
    return {
        "actual": {
            "requests": scope.sent_requests(),
            "cacheHits": scope.cache_hits(),
            "sources": {name: u.report() for name, u in sorted(scope.usage.items())},
        },
        "estimated": operation.estimate(),
    }


def _one_part(hit: Reply, spec: str) -> Reply:
    """A response-cache hit for a client that takes answers in parts: its one part."""
    reply = Reply(one_part(hit.body), media_type=None)
    reply.header("content-type", multipart_type(spec))
    for name, value in hit.raw_headers:
        if name not in (b"content-type", b"content-length"):
            reply.raw_headers.append((name, value))
    return reply


def _no_store(reply: Reply, request: GraphQLRequest) -> Reply:
    if request.method == "GET":  # an answer not kept: no one else may keep it either
        reply.header("Cache-Control", "no-store")
    return reply


def _leading_name(query: str) -> str:
    """The name of the document's first operation, read without parsing; "-" if none."""
    match = LEADING_NAME.match(query)
    return match.group(1) if match else "-"


def _runs_over_http(method: str, streaming: bool, kind: OperationType | None) -> None:
    """Over HTTP: no mutation over GET (405), a subscription only as a stream (406)."""
    if method == "GET" and kind is OperationType.MUTATION:
        raise RequestError(405, "mutations are not allowed over GET: use POST",
                           code=ErrorCode.METHOD_NOT_ALLOWED, headers={"Allow": "POST"})
    if kind is OperationType.SUBSCRIPTION and not streaming:
        raise RequestError(406, "a subscription is answered as a stream: send `Accept: "
                                f"{EVENT_STREAM}` (Server-Sent Events) or open a WebSocket "
                                "(graphql-transport-ws) to this path",
                           code=ErrorCode.NOT_ACCEPTABLE)


async def _unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """``work``'s result, or :class:`ClientLeft` once the client disconnects: then ``work`` is
    cancelled, and with it every resolver and upstream call it waits for.

    The body has been read: what ``receive()`` says now is the disconnect (uvicorn sends it when
    the connection closes).
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise ClientLeft
    return task.result()


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
