"""What is observed of each GraphQL request: ASGI middleware around the endpoint, installed only
when something observes (metrics, the access log or tracing), so a quiet gateway pays nothing.

* The endpoint fills in the request's :class:`Exchange` as it understands the request
  (operation, outcome, error codes, scope); the middleware reads it once the response is sent.
* With the access log, one line per GraphQL request on the ``gateway.access`` logger (info):
  request id, method, path, operation name, a hash of the document, status, outcome, duration
  (status 499 for a client that left), upstream requests and cache hits per source, the error
  codes of the answer, and the client (empty until clients authenticate).
* With metrics, each request is counted by operation and outcome and timed
  (:mod:`gateway.observability.metrics`; not a subscription's stream, which lasts as long as its
  client stays).
* With tracing, the request runs in a span continuing the client's ``traceparent``
  (:mod:`gateway.observability.tracing`), current while it runs: its upstream calls' parent.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.edge.request import headers_of, request_id
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing
from gateway.scope import RequestScope

__all__ = ["EXCHANGE", "Exchange", "Observed"]

EXCHANGE = "gateway.exchange"  # the ASGI scope's key of a request's Exchange
CLIENT_LEFT = 499  # the access log's status for a client that disconnected (nginx's)
MAX_LOGGED_CODES = 16  # error codes of one request's access-log line (a stream has many results)

access_logger = logging.getLogger("gateway.access")


@dataclass(slots=True)
class Exchange:
    """One request and what is said of it, filled in as it is understood."""

    headers: dict[str, str]  # the request's, by lower-case name
    request_id: str
    graphql: bool = True  # False for the playground's page
    operation: str = "-"
    query: str | None = None  # the document's text (its hash is logged)
    outcome: str = "error"  # ok, partial, error, cancelled
    codes: list[str] = field(default_factory=list)  # extensions.code of the answer's errors
    scope: RequestScope | None = None
    subscription: bool = False  # a stream as long as the client stays: not a request's latency
    status: int = CLIENT_LEFT  # the response's, once it starts
    started: float = field(default_factory=time.perf_counter)  # when the request began
    first_part: float | None = None  # an answer in parts: the seconds to its first part

    @classmethod
    def of(cls, scope: Scope) -> Exchange:
        """The request's exchange: the middleware's when it made one, else a new one."""
        exchange: Exchange | None = scope.get(EXCHANGE)
        if exchange is None:
            headers = headers_of(scope)
            exchange = scope[EXCHANGE] = cls(headers, request_id(headers.get("x-request-id")))
        return exchange

    @property
    def loggable_codes(self) -> list[str] | None:
        """Where a stream's next codes go: the list, until it holds enough for one line."""
        return self.codes if len(self.codes) < MAX_LOGGED_CODES else None


class Observed:
    """The middleware: the request's span, then its metrics and its log line."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics | None, access_log: bool,
                 tracing: Tracing | None) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange.of(scope)  # its clock starts here

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
            await send(message)

        if self.tracing is None:
            await self.app(scope, receive, sending)
        else:
            with self.tracing.operation_span(exchange.headers) as span:
                await self.app(scope, receive, sending)
                self.tracing.finish_operation(span, exchange.operation, exchange.request_id,
                                              exchange.scope, exchange.outcome)
        if exchange.graphql:
            self._observe(scope, exchange, time.perf_counter() - exchange.started)

    def _observe(self, asgi: Scope, exchange: Exchange, seconds: float) -> None:
        scope = exchange.scope
        if self.metrics is not None and not exchange.subscription:
            operation = None if exchange.operation in ("-", "(anonymous)") else exchange.operation
            self.metrics.graphql(operation, exchange.outcome, seconds,
                                 0 if scope is None else scope.sent_requests(),
                                 exchange.first_part)
        if not self.access_log:
            return
        access_logger.info("graphql request", extra={
            "request_id": exchange.request_id, "method": asgi["method"],
            "path": asgi["path"], "operation": exchange.operation,
            "document": None if exchange.query is None else _document_hash(exchange.query),
            "status": exchange.status,
            "outcome": exchange.outcome, "duration_ms": round(seconds * 1000, 1),
            # An answer in parts: the time to its first (duration_ms is to its last).
            **({} if exchange.first_part is None else {
                "first_part_ms": round(exchange.first_part * 1000, 1)}),
            "upstream_requests": 0 if scope is None else scope.sent_requests(),
            "cache_hits": 0 if scope is None else scope.cache_hits(),
            "upstream": {} if scope is None else {name: u.report()
                                                  for name, u in scope.usage.items()},
            "errors": exchange.codes,
            "client": "",  # the client's identity, once clients authenticate
        })


def _document_hash(query: str) -> str:
    """A short hash of the document's text: the same query has the same hash in every line."""
    return hashlib.sha256(query.encode()).hexdigest()[:16]
