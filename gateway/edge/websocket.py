"""GraphQL over WebSocket at ``/graphql``: the graphql-transport-ws protocol (graphql-ws's
PROTOCOL.md), spoken by strawberry's own handler, for subscriptions.

* **Handshake**: the subprotocol ``graphql-transport-ws`` (another: close 4406). A page of another
  origin is refused (403) unless ``[server] cors_origins`` or ``cors_origin_regex`` allow it: a
  WebSocket is not subject to CORS, and a hostile page could otherwise act for its visitor.
* **connection_init** within :data:`CONNECTION_INIT_SECONDS` (else close 4408). The client is
  identified as over HTTP (:meth:`~gateway.edge.admission.Admission.identify`), with the upgrade
  request's headers or the payload's ``X-API-Key`` / ``Authorization`` entries (any case; the
  payload's win), since a browser cannot set a WebSocket's headers. Without valid credentials
  where ``[auth] required``, or with credentials that are not valid: close 4403 ``Forbidden``;
  from an address that failed too often, or for a client that holds ``[changes]
  max_connections_per_client`` sockets already (in this process): close 4429 with the reason.
* **subscribe**: a subscription, admitted as an HTTP request is
  (:class:`~gateway.edge.admission.Admission`: request rate, document and variable limits,
  persisted operations, one operation, the cost rule, the cost budget), and at most
  ``[changes] max_subscriptions_per_connection`` at once on the connection. A refusal is an
  ``error`` message for that operation with ``extensions.code`` (``SUBSCRIPTION_LIMIT``,
  ``RATE_LIMITED``…); the connection stays. Queries and mutations go over HTTP.
* Each operation has a context of its own (:class:`~gateway.graph.context.SubscriptionContext`,
  from the upgrade request's ``Accept-Language`` and pass-through credentials), each of its
  events resolved as a request of its own.
* When the gateway ends a subscription (``SLOW_SUBSCRIBER``, ``SHUTTING_DOWN``,
  ``COST_BUDGET_EXCEEDED``, ``UNAUTHENTICATED``): a ``next`` with the error
  (``extensions.code``, ``lastEventId``), then ``complete``. When the process stops,
  once those are sent, the socket is closed with 1001 (going away) and a reason.
* A message is at most ``[server] max_body_bytes`` (uvicorn's ``ws_max_size``; larger: close
  1009); uvicorn pings every 20 s and drops a peer that stops answering.

Every error sent carries an ``extensions.code``, as over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from graphql import GraphQLError, GraphQLFormattedError, OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry import Schema
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.schema.schema import StreamResult
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage,
    Message,
    SubscribeMessage,
)
from strawberry.types.graphql import OperationType as StrawberryOperationType
from strawberry.types.unset import UNSET, UnsetType

from gateway.access.auth import Client
from gateway.config import ChangeSettings
from gateway.edge.admission import (
    CREDENTIAL_HEADERS,
    Admission,
    DocumentRefused,
    Operation,
    RequestError,
)
from gateway.edge.bodies import coded, error_payload
from gateway.edge.contexts import Contexts
from gateway.edge.persisted import PersistedError
from gateway.edge.request import request_id
from gateway.errors import ErrorCode

__all__ = ["CONNECTION_INIT_SECONDS", "SHUTDOWN_CLOSE", "Connection", "GraphQLWebSockets"]

CONNECTION_INIT_SECONDS = 10.0
# The close once the gateway stops: 1001, "going away" (RFC 6455), and what to do about it.
SHUTDOWN_CLOSE = (1001, "the gateway is shutting down; reconnect with the last event id")


@dataclass(eq=False)
class Connection:
    """One WebSocket connection: the context strawberry's handler keeps for it."""

    websocket: WebSocket
    request_id: str  # of the connection: every operation's upstream calls carry it
    connection_params: dict[str, object] = field(default_factory=dict)  # connection_init's
    client: Client | None = None  # once authenticated
    # The operations admitted at `subscribe`, by their text and name, in order, for the streams
    # strawberry's handler starts for them (it hands a stream the text, not the message).
    admitted: dict[tuple[str, str | None], list[Operation]] = field(default_factory=dict)


def _credentials(headers: Mapping[str, str], params: Mapping[str, object]) -> dict[str, str]:
    """The credentials to authenticate with: the upgrade request's headers, and those the
    ``connection_init`` payload names."""
    credentials = {name: headers[name] for name in CREDENTIAL_HEADERS if name in headers}
    for key, value in params.items():
        if key.lower() in CREDENTIAL_HEADERS and isinstance(value, str):
            credentials[key.lower()] = value
    return credentials


class _Handler(BaseGraphQLTransportWSHandler[Connection, None]):
    """strawberry's graphql-transport-ws handler, with the gateway's checks before an operation
    starts and an ``extensions.code`` on every error."""

    view: GraphQLWebSockets

    async def handle(self) -> None:
        self.view.handlers.add(self)
        try:
            await super().handle()
        finally:
            self.view.handlers.discard(self)
            self.view.left(self.context)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        # Before connection_ack, or with an id in use, strawberry closes the socket itself.
        if self.connection_acknowledged and message["id"] not in self.operations:
            refusal = await self._refusal(message)
            if refusal is not None:
                error: ErrorMessage = {"id": message["id"], "type": "error", "payload": [
                    cast("GraphQLFormattedError", e) for e in refusal]}
                await self.send_message(error)
                return
        await super().handle_subscribe(message)

    async def _refusal(self, message: SubscribeMessage) -> list[dict[str, Any]] | None:
        """Why the operation may not start (formatted errors), or None."""
        limit = self.view.max_operations
        if len(self.operations) >= limit:
            return [_error(ErrorCode.SUBSCRIPTION_LIMIT,
                           f"this connection has {limit} subscriptions, the most it may have "
                           "([changes] max_subscriptions_per_connection): complete one, or "
                           "open another connection")]
        payload: Any = message.get("payload")
        if not isinstance(payload, dict):
            return [_error(ErrorCode.BAD_USER_INPUT, "`subscribe` needs a `payload` object")]
        view, connection = self.view, self.context
        client = connection.client
        assert client is not None  # acknowledged: authenticated
        try:
            persisted = await view.admission.read(client, payload)
            operation = await view.admission.operation(client, payload, persisted,
                                                       runs=_runs_over_websocket)
            # Its headers are read once here: a bad one refuses the operation, not its task.
            view.contexts.subscription(connection.websocket.headers, connection.request_id,
                                       client, operation)
        except (RequestError, PersistedError, GraphQLError) as error:
            return [error_payload(error)]
        except DocumentRefused as refused:
            return [coded(dict(e.formatted), ErrorCode.GRAPHQL_VALIDATION_FAILED)
                    for e in refused.errors]
        key = (payload["query"], payload.get("operationName"))
        connection.admitted.setdefault(key, []).append(operation)
        return None

    async def send_message(self, message: Message) -> None:
        if message["type"] == "error":
            message["payload"] = _coded(message["payload"])
        elif message["type"] == "next" and "errors" in message["payload"]:
            message["payload"]["errors"] = _coded(message["payload"]["errors"])
        await super().send_message(message)

    async def going_away(self, timeout: float) -> None:
        tasks = [operation.task for operation in self.operations.values() if operation.task]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        with contextlib.suppress(Exception):  # gone already
            await self.websocket.close(*SHUTDOWN_CLOSE)


REASON_LENGTH = 120  # a close frame's reason is at most 123 bytes


class _Socket(ASGIWebSocketAdapter):
    """strawberry's WebSocket adapter, whose refusal at ``connection_init`` is always 4403
    ``Forbidden``: a connection refused for too many of something closes with the code and
    reason :meth:`GraphQLWebSockets.on_ws_connect` left on it instead."""

    async def close(self, code: int, reason: str) -> None:
        refusal = getattr(self.ws.state, "refusal", None)
        if refusal is not None and code == 4403:
            code, reason = refusal
        await super().close(code, reason)


class GraphQLWebSockets(GraphQL[Connection, None]):
    """The WebSocket side of ``/graphql`` (its ASGI app, for a ``WebSocketRoute``)."""

    def __init__(self, schema: Schema, *, admission: Admission, contexts: Contexts,
                 settings: ChangeSettings, cors_origins: Sequence[str] = (),
                 cors_origin_regex: str | None = None) -> None:
        super().__init__(
            # The handler runs each operation on this schema (see _OperationSchema).
            cast("BaseSchema", _OperationSchema(schema, contexts)),
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=CONNECTION_INIT_SECONDS),
            max_subscriptions_per_connection=None,  # ours, with its code (_Handler)
            allowed_origins=cors_origins,
        )
        self.admission = admission
        self.contexts = contexts
        # The shares: operations per connection, connections per client (in this process).
        self.max_operations = settings.max_subscriptions_per_connection
        self.max_sockets = settings.max_connections_per_client
        self.origin_regex = re.compile(cors_origin_regex) if cors_origin_regex else None
        self.handlers: set[_Handler] = set()  # the connections open now
        self.sockets: Counter[str] = Counter()  # acknowledged connections by client (rate key)

    graphql_transport_ws_handler_class = _Handler
    websocket_adapter_class = _Socket

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        return super().is_websocket_origin_allowed(request, origin) or (
            self.origin_regex is not None and self.origin_regex.fullmatch(origin) is not None)

    async def get_context(self, request: Request | WebSocket,
                          response: Response | WebSocket) -> Connection:
        assert isinstance(request, WebSocket)
        return Connection(request, request_id(request.headers.get("x-request-id")))

    async def on_ws_connect(self, context: Connection) -> UnsetType | dict[str, object] | None:
        """Identifies the client at ``connection_init`` (4403 when it cannot be; 4429 when its
        address failed too often, or it holds its share of sockets)."""
        websocket = context.websocket
        address = websocket.client.host if websocket.client is not None else "-"
        try:
            client = await self.admission.identify(
                _credentials(websocket.headers, context.connection_params), address=address)
        except RequestError as error:
            if error.status == 429:
                websocket.state.refusal = (4429, error.message[:REASON_LENGTH])
            raise ConnectionRejectionError from None
        share = self.max_sockets
        if self.sockets[client.rate_key] >= share:
            websocket.state.refusal = (4429, f"this client holds {share} connections, its "
                                             "share ([changes] max_connections_per_client)")
            raise ConnectionRejectionError
        context.client = client
        self.sockets[client.rate_key] += 1
        return cast("UnsetType", UNSET)  # connection_ack without a payload

    def left(self, context: Connection) -> None:
        """A connection ended: its client's share has room again."""
        if context.client is not None:
            key = context.client.rate_key
            self.sockets[key] -= 1
            if self.sockets[key] <= 0:
                del self.sockets[key]
            context.client = None

    async def close_all(self, timeout: float) -> None:
        """The process stops (its subscriptions were ended): close every connection once its
        operations have sent their last messages, or after ``timeout`` seconds."""
        await asyncio.gather(*(handler.going_away(timeout) for handler in list(self.handlers)))


def _coded(errors: list[GraphQLFormattedError]) -> list[GraphQLFormattedError]:
    """Errors with an ``extensions.code`` each (graphql-core's validation errors have none)."""
    return [cast("GraphQLFormattedError",
                 coded(dict(error), ErrorCode.GRAPHQL_VALIDATION_FAILED)) for error in errors]


def _error(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code.value}}


def _runs_over_websocket(kind: OperationType | None) -> None:
    if kind is not OperationType.SUBSCRIPTION:
        raise RequestError(400, "over a WebSocket the gateway runs subscriptions: send queries "
                                "and mutations over HTTP (POST /graphql)")


class _OperationSchema:
    """The schema as the protocol handler sees it: the handler would run every operation of a
    connection with the connection's context, so each gets a context of its own here; and only
    subscriptions run (the handler's checks let nothing else through)."""

    def __init__(self, schema: Schema, contexts: Contexts) -> None:
        self.schema = schema
        self.contexts = contexts

    async def stream(self, query: str | None, variable_values: dict[str, Any] | None = None,
                     context_value: Any = None, root_value: Any = None,
                     operation_name: str | None = None, **_: Any) -> StreamResult:
        connection: Connection = context_value
        assert connection.client is not None and query is not None
        key = (query, operation_name)
        operation = connection.admitted[key].pop(0)
        if not connection.admitted[key]:
            del connection.admitted[key]
        context = self.contexts.subscription(
            connection.websocket.headers, connection.request_id, connection.client, operation)
        return await self.schema.stream(
            query, variable_values=variable_values, context_value=context,
            root_value=root_value, operation_name=operation_name,
            allowed_operation_types=(StrawberryOperationType.SUBSCRIPTION,))
