"""``/graphql``: GraphQL over HTTP, per the GraphQL-over-HTTP specification.

* ``POST`` with ``Content-Type: application/json`` (anything else: 415); ``GET`` for queries only
  (a mutation over GET: 405). Other methods: 405 with ``Allow``.
* The body must be a JSON object (400 otherwise, and 413 past ``max_body_bytes``); ``query`` a
  string, ``operationName`` a string or null, ``variables`` and ``extensions`` maps or null.
* ``Accept`` chooses the media type: ``application/graphql-response+json`` — then a request error
  (parse, validation, variable coercion: no execution happened) answers 400 — or
  ``application/json`` (the default, always 200 once the request is well-formed). Either way a
  request error's body has no ``data`` key. An ``Accept`` naming neither: 406.
* The query is parsed once, at the :class:`~gateway.graph.documents.DocumentCache` execution
  shares, which refuses a document (or a ``variables`` map) over the ``[limits]`` before any
  other work: ``DOCUMENT_LIMIT_EXCEEDED``, a request error. The ``variables`` map is checked
  first of all, before the response cache hashes it.
* Each request may make at most ``[limits] max_upstream_requests`` upstream requests (counted
  on its :class:`~gateway.scope.RequestScope`), and its answer may be at most
  ``max_response_bytes`` long: a longer one is replaced by a ``RESPONSE_TOO_LARGE`` error (and
  not kept).
* ``Accept-Language`` must be language ranges (:mod:`gateway.languages`): anything else answers
  400 ``BAD_USER_INPUT`` naming the header, before any GraphQL work.
* Every error body is JSON, never plain text or a stack trace.
* A browser's ``GET`` (``Accept: text/html``, no ``query``) gets the playground when enabled.
* ``Accept: text/event-stream``: GraphQL over Server-Sent Events (:mod:`gateway.sse`,
  "distinct connections" mode). A subscription streams one ``next`` event per change, each with
  its event id as the SSE ``id`` (a ``Last-Event-ID`` resumes after it), until the client
  leaves or the gateway ends it (an error, then ``complete``); a query or mutation answers one
  ``next``. Every step before execution is the same as for JSON (access control, limits, CSRF
  prevention); parse and validation errors arrive as a ``next`` event, refusals before them
  (401, 429, 413…) as the usual JSON error. A subscription asked for as JSON: 406. Never kept in
  the response cache. WebSockets (graphql-transport-ws) on the same path: :mod:`gateway.websocket`.
* With ``csrf_prevention`` (Apollo Server's ``csrfPrevention``), a GET query must carry a
  header a cross-site form or image cannot send: ``Apollo-Require-Preflight`` or
  ``X-Apollo-Operation-Name`` (non-empty), or a ``Content-Type`` other than a form's three;
  otherwise 400 ``PREFLIGHT_REQUIRED`` before anything runs. (A POST must be
  ``application/json``, which a browser always preflights.)
* A client that disconnects stops its request: execution is cancelled with every resolver and
  upstream call it still waits for (an upstream call shared with another request goes on for
  that one), and nothing is answered.
* Every request has an id: the client's ``X-Request-ID`` when it is 1 to 128 letters, digits or
  ``-_.:@/+=`` (anything else is replaced, never echoed), else a new one. It is answered in
  ``X-Request-ID`` and sent upstream with every call the request makes.
* With ``access_log``, one line per GraphQL request on the ``gateway.access`` logger (info):
  request id, method, path, operation name, a hash of the document, status, outcome, duration
  (status 499 for a client that left), upstream requests and cache hits per source, the error
  codes of the answer, and the client (empty until clients authenticate).
* With metrics, each request is counted by operation and outcome and timed
  (:mod:`gateway.metrics`; not a subscription's stream, which lasts as long as its client
  stays); with tracing, it runs in a span continuing the client's ``traceparent``
  (:mod:`gateway.tracing`).
* ``extensions.cost`` (``[server] cost_extension``: always, or when the request sends
  ``X-Gateway-Cost: 1``): ``actual``, what the request cost each source (upstream requests,
  cache hits, time), and ``estimated``, the query-safety rule's price. Such a request is neither
  answered from nor kept in the response cache (its answer is its own).
* With a :class:`~gateway.response_cache.ResponseCache`, a repeated request is answered from it
  before any parsing (``X-Response-Cache: hit``, with ``Age``); a fresh answer without errors
  or stale data is kept (``X-Response-Cache: miss``). A ``GET`` answer that can be kept carries
  an ``ETag`` and ``Cache-Control: max-age`` (``private`` unless configured ``public``), and a
  matching ``If-None-Match`` gets 304 with no body; other ``GET`` answers say ``no-store``.
* Access control, in this order, before any GraphQL work: the client authenticates
  (:mod:`gateway.auth`; 401 ``UNAUTHENTICATED`` with ``WWW-Authenticate``), its request rate is
  counted (:mod:`gateway.rate_limits`; 429 ``RATE_LIMITED`` with ``Retry-After``), the
  persisted operation is read (:mod:`gateway.persisted`: APQ or trusted documents) and each
  source's pass-through credential taken (:mod:`gateway.credentials`). The response cache is
  keyed by the document's SHA-256, the client and its credentials' fingerprints. After parsing,
  the operation is admitted on its estimated cost (429 ``COST_BUDGET_EXCEEDED``) and, executed,
  charged its upstream calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, OperationType
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry import Schema

from gateway.admission import (
    Admission,
    DocumentRefused,
    Operation,
    RequestError,
    operation_label,
)
from gateway.auth import Authenticator, Client
from gateway.bounded import BoundedDict
from gateway.changes.feed import ChangeFeed
from gateway.config import AuthSettings, PersistedSettings, RateLimitSettings
from gateway.credentials import Credential
from gateway.errors import BadUserInput, ErrorCode
from gateway.graph.context import GatewayContext, SubscriptionContext
from gateway.graph.documents import DocumentCache
from gateway.metrics import Metrics
from gateway.persisted import Persisted, PersistedError, PersistedOperations
from gateway.rate_limits import CostEstimate, RateLimits
from gateway.response_cache import CachedResponse, ResponseCache
from gateway.runtime import Runtime
from gateway.scope import RequestScope
from gateway.sse import COMPLETE, EVENT_STREAM, EventStream, next_frame

if TYPE_CHECKING:
    from gateway.tracing import Tracing

__all__ = ["GRAPHQL_RESPONSE", "GraphQLEndpoint", "coded", "error_payload", "request_id"]

# The estimated cost of an operation of a document (the query-safety rule's price), or None.

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
DEFAULT_MAX_BODY = 1_000_000
# Content types a cross-site form can send without a CORS preflight (the Fetch standard's
# CORS-safelisted request header values of Content-Type).
SIMPLE_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data",
                                  "text/plain"})
PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name")
CLIENT_LEFT = 499  # the access log's status for a client that disconnected (nginx's)
# A client's X-Request-ID is kept when it is short and plain (it reaches logs and upstreams).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# The name of a document's first operation, read without parsing (a response-cache hit).
LEADING_NAME = re.compile(r"\s*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")
MAX_LOGGED_CODES = 16  # error codes of one request's access-log line (a stream has many results)
# Characters of an error's message and of each step of its path that are sent: what a client
# wrote (a name, a variable's value) is echoed up to this much.
MAX_ERROR_TEXT = 512

access_logger = logging.getLogger("gateway.access")
T = TypeVar("T")


class _ClientLeft(Exception):
    """The client disconnected before its answer: nothing is sent."""


@dataclass
class _Access:
    """What the log line and the metrics say of one request, filled in as it is understood."""

    request_id: str
    graphql: bool = True  # False for the playground's page
    operation: str = "-"
    query: str | None = None  # the document's text (its hash is logged)
    outcome: str = "error"  # ok, partial, error, cancelled
    codes: list[str] = field(default_factory=list)  # extensions.code of the answer's errors
    scope: RequestScope | None = None
    cost: bool = False  # the answer carries extensions.cost
    subscription: bool = False  # a stream as long as the client stays: not a request's latency


def request_id(sent: str | None) -> str:
    """The client's request id when it is acceptable, else a new one: this process's random
    prefix and a counter (unique without a random draw per request)."""
    if sent and REQUEST_ID.fullmatch(sent):
        return sent
    return f"{PROCESS_ID}{next(_REQUEST_NUMBERS):016x}"  # 32 hex digits, as a UUID's


PROCESS_ID = uuid.uuid4().hex[:16]
_REQUEST_NUMBERS = itertools.count(1)
LANGUAGE_KEYS = 1024  # Accept-Language values whose sources' languages are kept


class GraphQLEndpoint:
    """The ASGI app behind ``/graphql``."""

    def __init__(self, schema: Schema, runtime: Runtime, *, documents: DocumentCache,
                 estimate_cost: CostEstimate,
                 playground: Callable[[Request], Response] | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY, access_log: bool = False,
                 responses: ResponseCache | None = None,
                 csrf_prevention: bool = False,
                 persisted: PersistedOperations | None = None,
                 auth: Authenticator | None = None,
                 rate_limits: RateLimits | None = None,
                 cost_extension: str = "off",
                 tracing: Tracing | None = None,
                 changes: ChangeFeed | None = None) -> None:
        self.schema = schema
        self.changes = changes
        self.metrics: Metrics | None = runtime.metrics
        self.tracing = tracing
        self.cost_extension = cost_extension
        self.responses = responses
        self._language_keys: BoundedDict[str | None, str] = BoundedDict(LANGUAGE_KEYS)
        self.runtime = runtime
        self.documents = documents
        self.playground = playground
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self.csrf_prevention = csrf_prevention
        self.persisted = persisted or PersistedOperations(PersistedSettings(), documents=None)
        self.auth = auth or Authenticator(AuthSettings())
        self.rate_limits = rate_limits or RateLimits(RateLimitSettings(), cache_url="memory://",
                                                     namespace="-")
        # The seam for the cost model: an operation's estimated upstream requests.
        self.estimate_cost = estimate_cost
        self.admission = Admission(auth=self.auth, rate_limits=self.rate_limits,
                                   persisted=self.persisted, documents=documents,
                                   schema=schema, estimate_cost=estimate_cost,
                                   clock=runtime.clock)
        # Sources whose client may send its own credential: (source, header).
        self.pass_through = [(s.name, s.pass_through_header.lower())
                             for s in runtime.config.sources if s.pass_through_header]
        varying = ["Accept", "Accept-Language"]
        if self.auth.enabled:
            varying += ["Authorization", "X-API-Key"]
        varying += [s.pass_through_header for s in runtime.config.sources
                    if s.pass_through_header]
        self.vary = ", ".join(varying)
        self.streams: set[EventStream] = set()  # the SSE streams open now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = _Request(scope, receive)
        access = _Access(request_id(request.headers.get("x-request-id")))
        if self.tracing is None:
            response = await self._answer(request, access)
        else:
            with self.tracing.operation_span(request.headers) as span:
                response = await self._answer(request, access)
                self.tracing.finish_operation(span, access.operation, access.request_id,
                                              access.scope, access.outcome)
        if response is not None:
            response.headers["X-Request-ID"] = access.request_id
            await response(scope, receive, send)
            if isinstance(response, EventStream) and response.client_left:
                access.outcome = "cancelled"  # the usual end of a subscription, but logged
        if access.graphql:
            self._observe(request, access, response, time.perf_counter() - started)

    async def _answer(self, request: Request, access: _Access) -> Response | None:
        try:
            return await self._handle(request, access)
        except RequestError as exc:
            access.codes.append(exc.code.value)
            return _json_error(exc)
        except (_ClientLeft, ClientDisconnect):
            access.outcome = "cancelled"
            return None

    def _observe(self, request: Request, access: _Access, response: Response | None,
                 seconds: float) -> None:
        """The request's metrics and its log line."""
        scope = access.scope
        if self.metrics is not None and not access.subscription:
            operation = None if access.operation in ("-", "(anonymous)") else access.operation
            self.metrics.graphql(operation, access.outcome, seconds,
                                 0 if scope is None else scope.sent_requests())
        if not self.access_log:
            return
        usage = {} if scope is None else scope.usage
        access_logger.info("graphql request", extra={
            "request_id": access.request_id, "method": request.method,
            "path": request.url.path, "operation": access.operation,
            "document": None if access.query is None else _document_hash(access.query),
            "status": CLIENT_LEFT if response is None else response.status_code,
            "outcome": access.outcome, "duration_ms": round(seconds * 1000, 1),
            "upstream_requests": sum(u.requests for u in usage.values()),
            "cache_hits": sum(u.cache_hits for u in usage.values()),
            "upstream": {name: u.report() for name, u in usage.items()},
            "errors": access.codes,
            "client": "",  # the client's identity, once clients authenticate
        })

    async def _handle(self, request: Request, access: _Access) -> Response:
        if request.method not in ("GET", "POST"):
            raise RequestError(405, f"{request.method} is not supported: use GET or POST",
                               code=ErrorCode.METHOD_NOT_ALLOWED, headers={"Allow": "GET, POST"})
        accept = request.headers.get("accept", "")
        if (request.method == "GET" and "query" not in request.query_params
                and _wants_html(accept)):  # a browser opening the page
            access.graphql = False
            if self.playground is None:
                raise RequestError(404, "the playground is off here ([server] graphiql = "
                                        "false): send GraphQL requests as a POST of "
                                        "application/json", code=ErrorCode.PLAYGROUND_DISABLED)
            return self.playground(request)
        if request.method == "GET" and self.csrf_prevention:
            _require_preflight(request)
        media_type = negotiate(accept)
        streaming = media_type == EVENT_STREAM
        params = await self._params(request)
        address = request.client.host if request.client is not None else "-"
        client = await self.admission.identify(request.headers, address=address)
        try:
            persisted = await self.admission.read(client, params)
        except GraphQLError as error:  # the variables are over a limit
            return _result_response(None, [error], None, media_type,
                                    ErrorCode.GRAPHQL_PARSE_FAILED)
        except PersistedError as exc:
            return _persisted_error(exc, media_type)
        access.query = params.get("query") or ""
        access.cost = self.cost_extension == "always" or (
            self.cost_extension == "header" and request.headers.get("x-gateway-cost") == "1")
        # Without clients' own upstream credentials the response-cache key needs no request
        # context: a hit is answered before one is made. A stream is never kept.
        early = not access.cost and not self.pass_through and not streaming
        cache_key = self._response_key(params, persisted, request, client, None) if early \
            else None
        context: GatewayContext | None = None
        if cache_key is None and not streaming:
            context = self._context(request, access.request_id)
            access.scope = context.scope
            if not access.cost:
                cache_key = self._response_key(params, persisted, request, client,
                                               context.scope)
        if cache_key is not None:
            hit = await self.responses.get(cache_key)  # type: ignore[union-attr]
            if self.metrics is not None:
                (self.metrics.response_miss if hit is None else self.metrics.response_hit).inc()
            if hit is not None:
                access.operation = (params.get("operationName")
                                    or _leading_name(params.get("query") or ""))
                access.outcome = "ok"
                return self._cached(request, hit, media_type, "hit", private=bool(
                    client.id or (context is not None and context.scope.credentials)))
        try:
            operation = await self.admission.operation(
                client, params, persisted,
                runs=functools.partial(_runs_over_http, request.method, streaming))
        except PersistedError as exc:
            return _persisted_error(exc, media_type)
        except GraphQLError as error:
            return _result_response(None, [error], None, media_type,
                                    ErrorCode.GRAPHQL_PARSE_FAILED, access.codes)
        except DocumentRefused as refused:
            access.operation = refused.label
            return _result_response(None, refused.errors, None, media_type,
                                    ErrorCode.GRAPHQL_VALIDATION_FAILED, access.codes)
        document = operation.document
        access.operation = operation_label(document, operation.name)
        if streaming:
            context = self.subscription_context(
                request.headers, access.request_id, client, operation,
                last_event_id=request.headers.get("last-event-id"))
            access.scope = context.scope
        elif context is None:
            context = self._context(request, access.request_id)
            access.scope = context.scope
        if operation.kind is OperationType.SUBSCRIPTION:
            return await self._subscribe(params, context, access)
        try:
            result = await _unless_disconnected(request, self.schema.execute(
                params["query"], variable_values=params.get("variables"),
                context_value=context, operation_name=params.get("operationName")))
        finally:  # a client that left is charged what its request made too
            await self.admission.charge(client, context.scope.upstream_requests)
        access.outcome = ("ok" if not result.errors else
                          "error" if result.data is None else "partial")
        if persisted.register and _validated(result.data, result.errors):
            await self._register(client, persisted)
        extensions = result.extensions
        if access.cost:
            extensions = {**(extensions or {}), "cost": self._cost(
                context.scope, document, params.get("operationName"))}
        response = _result_response(result.data, result.errors, extensions, media_type,
                                    ErrorCode.GRAPHQL_VALIDATION_FAILED, access.codes,
                                    max_bytes=self.runtime.config.limits.max_response_bytes)
        if isinstance(response, EventStream):
            return response
        limited = _within(response, self.runtime.config.limits.max_response_bytes, media_type)
        if limited is not response:
            return limited
        if cache_key is not None and not result.errors and not (result.extensions or {}).get(
                "stale") and self._keeps(document, params.get("operationName")):
            kept = await self.responses.put(  # type: ignore[union-attr]
                cache_key, bytes(response.body), fresh_until=context.scope.fresh_until)
            if kept is not None:
                return self._cached(request, kept, media_type, "miss", private=bool(
                    client.id or context.scope.credentials))
        if request.method == "GET":
            response.headers["Cache-Control"] = "no-store"
        return response

    async def _register(self, client: Client, persisted: Persisted) -> None:
        """Keep an APQ document, counted against the client's request budget (a client past
        it got its answer, but nothing is kept)."""
        cost = self.persisted.registration_cost(persisted)
        if cost and await self.rate_limits.take(client, cost):
            await self.persisted.register(persisted)

    def _cost(self, scope: RequestScope, document: DocumentNode, operation_name: str | None
              ) -> dict[str, Any]:
        """``extensions.cost``: what the request cost each source, and its estimated price."""
        usage = scope.usage
        return {
            "actual": {
                "requests": sum(u.requests for u in usage.values()),
                "cacheHits": sum(u.cache_hits for u in usage.values()),
                "sources": {name: u.report() for name, u in sorted(usage.items())},
            },
            "estimated": self.estimate_cost(document, operation_name),
        }

    async def _subscribe(self, params: dict[str, Any], context: GatewayContext,
                         access: _Access) -> Response:
        """A subscription over SSE: its results as events, until it or the client ends."""
        results = await self.schema.subscribe(
            params["query"], variable_values=params.get("variables"), context_value=context,
            operation_name=params.get("operationName"))
        access.outcome, access.subscription = "ok", True
        return EventStream(self._frames(results, context, access), open_streams=self.streams)

    async def _frames(self, results: AsyncIterator[Any], context: GatewayContext,
                      access: _Access) -> AsyncIterator[bytes]:
        """Each result as a ``next`` event (an event's with its id), then ``complete``."""
        max_bytes = self.runtime.config.limits.max_response_bytes
        async with contextlib.aclosing(results):  # type: ignore[type-var]
            async for result in results:
                codes = access.codes if len(access.codes) < MAX_LOGGED_CODES else None
                body = _limited(_result_body(result.data, result.errors, result.extensions,
                                             ErrorCode.GRAPHQL_VALIDATION_FAILED, codes),
                                max_bytes)
                # Read now: the context moves to the next event once this one was written.
                event_id = getattr(context, "event_id", None) if result.data is not None \
                    else None
                yield next_frame(body, event_id)
        yield COMPLETE

    async def streams_ended(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) for the open SSE streams to end."""
        waits = [asyncio.ensure_future(stream.ended.wait()) for stream in self.streams]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for wait in pending:
            wait.cancel()

    def _response_key(self, params: dict[str, Any], persisted: Persisted, request: Request,
                      client: Client, scope: RequestScope | None) -> str | None:
        """The request's response-cache key; None when answers are not kept for it.

        The document is named by its SHA-256 (a hash-only APQ request needs no lookup). The
        language part is what each source answers in (a source that ignores languages adds
        nothing), so clients whose headers differ but choose the same languages share answers.
        The client part is the client's identity and the fingerprints of its own upstream
        credentials: clients never see each other's answers.
        """
        responses = self.responses
        if responses is None or params.get("operationName") in responses.settings.\
                exclude_operations:
            return None
        language = self._language_key(request.headers.get("accept-language"))
        if language is None:
            return None  # a header the request context refuses, with its own error
        credentials = "" if scope is None else " ".join(
            f"{source}={credential.fingerprint}"
            for source, credential in sorted(scope.credentials.items()))
        return responses.key(f"sha256:{persisted.hash}", params.get("operationName"),
                             params.get("variables"), language=language,
                             client=f"{client.identity}\n{credentials}")

    def _language_key(self, header: str | None) -> str | None:
        """What each source answers in for this ``Accept-Language`` (a source that ignores
        languages: "-"), kept per header value (clients send few); None for a bad header."""
        key = self._language_keys.get(header)
        if key is None:
            scope = RequestScope(language=header)
            try:
                key = " ".join(adapter.language(scope) or "-"
                               for adapter in self.runtime.adapters.values())
            except BadUserInput:
                return None
            self._language_keys.put(header, key)
        return key

    def _keeps(self, document: DocumentNode, operation_name: str | None) -> bool:
        """Whether the operation's answers may be kept: queries not excluded by name."""
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)
                      and (operation_name is None or (d.name and d.name.value == operation_name))]
        if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
            return False
        name = operations[0].name
        excluded = self.responses.settings.exclude_operations  # type: ignore[union-attr]
        return name is None or name.value not in excluded

    def _cached(self, request: Request, entry: CachedResponse, media_type: str, outcome: str,
                *, private: bool = False) -> Response:
        """A kept answer: from the cache (``hit``) or just kept (``miss``). ``private``: the
        answer is one client's (authenticated, or with its own credentials), never public."""
        now = self.runtime.clock.wall()
        headers = {"X-Response-Cache": outcome, "Vary": self.vary}
        if outcome == "hit":
            headers["Age"] = str(max(0, int(now - entry.stored_at)))
        if request.method == "GET":
            settings = self.responses.settings  # type: ignore[union-attr]
            public = settings.public and not private
            headers["ETag"] = entry.etag
            headers["Cache-Control"] = (f"{'public' if public else 'private'}, "
                                        f"max-age={entry.max_age(now)}")
            if entry.etag in _etags(request.headers.get("if-none-match", "")):
                return Response(status_code=304, headers=headers)
        return _Kept(entry.body, media_type, headers)

    def _context(self, request: Request, request_id: str) -> GatewayContext:
        return GatewayContext(adapters=self.runtime.adapters,
                              scope=self._scope(request.headers, request_id),
                              cursors=self.runtime.cursors, changes=self.changes)

    def subscription_context(self, headers: Mapping[str, str], request_id: str, client: Client,
                             operation: Operation, *, last_event_id: str | None = None
                             ) -> SubscriptionContext:
        """The context of a subscription over either transport: a standing request. Each
        event it emits is admitted for the client first (:meth:`Admission.event`), gets a new
        scope like the first (``headers``' language and pass-through credentials), and the
        client is charged what resolving it cost."""
        return SubscriptionContext(
            adapters=self.runtime.adapters, scope=self._scope(headers, request_id),
            cursors=self.runtime.cursors, changes=self.changes,
            new_scope=functools.partial(self._scope, headers, request_id),
            admit=functools.partial(self.admission.event, client, operation),
            charge=functools.partial(self.admission.charge, client),
            owner=client.rate_key, ends_at=client.expires_at, clock=self.runtime.clock,
            last_event_id=last_event_id)

    def _scope(self, headers: Mapping[str, str], request_id: str) -> RequestScope:
        """A request's scope: 400 for an ``Accept-Language`` or credential it cannot use."""
        scope = RequestScope(
            language=headers.get("accept-language"),
            request_id=request_id,
            deadline=(self.runtime.clock.monotonic()
                      + self.runtime.config.server.request_timeout_seconds),
            clock=self.runtime.clock,
            max_response_bytes=self.runtime.config.limits.max_response_bytes,
            upstream_budget=self.runtime.config.limits.max_upstream_requests,
        )
        try:
            scope.language_ranges  # noqa: B018  # read (and checked) once, before any work
        except BadUserInput as exc:
            raise RequestError(400, exc.message) from None
        for source, header in self.pass_through:
            token = headers.get(header)
            if token is None:
                continue
            token = token.strip()
            if not Credential.acceptable(token):  # never echoed: it is a credential
                raise RequestError(400, f"the header {header} must be a token: at most 4096 "
                                        "visible ASCII characters")
            scope.credentials[source] = Credential.of(token)
        return scope

    async def _params(self, request: Request) -> dict[str, Any]:
        if request.method == "GET":
            params: dict[str, Any] = dict(request.query_params)
            for key in ("variables", "extensions"):
                if key in params:
                    params[key] = _json(params[key], f"`{key}` is not valid JSON")
        else:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != JSON:
                raise RequestError(415, "send the request body as application/json",
                                   code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                                   headers={"Accept-Post": JSON})
            params = _json(await self._body(request), "the request body is not valid JSON")
            if not isinstance(params, dict):
                raise RequestError(400, "the request body must be a JSON object")
        return params

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise RequestError(413, f"the request body is larger than {self.max_body_bytes} bytes",
                               code=ErrorCode.PAYLOAD_TOO_LARGE)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_body_bytes:
                raise RequestError(
                    413, f"the request body is larger than {self.max_body_bytes} bytes",
                    code=ErrorCode.PAYLOAD_TOO_LARGE)
        return bytes(body)


class _Headers(Headers):
    """Starlette's request headers, looked up in a dict made once: a request's headers are
    read about ten times on its way, each a scan of the list otherwise. The first of repeated
    names wins, as in Starlette."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope=scope)
        first: dict[bytes, bytes] = {}
        for name, value in self._list:
            first.setdefault(name, value)
        self._first = first

    def get(self, key: str, default: Any = None) -> Any:
        value = self._first.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        value = self._first.get(key.lower().encode("latin-1"))
        if value is None:
            raise KeyError(key)
        return value.decode("latin-1")

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, str) and key.lower().encode("latin-1") in self._first


class _Request(Request):
    @property
    def headers(self) -> Headers:
        if not hasattr(self, "_headers"):
            self._headers = _Headers(self.scope)
        return self._headers


class _Kept(Response):
    """A kept answer: its headers written straight as bytes (a hit is all headers and one
    copy of bytes; Starlette's Response would check and build them again each time)."""

    def __init__(self, body: bytes, media_type: str, headers: dict[str, str]) -> None:
        self.status_code = 200
        self.body = body
        self.background = None
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", _CONTENT_TYPES.get(media_type)
             or f"{media_type}; charset=utf-8".encode()),
            *((name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()),
        ]


_CONTENT_TYPES = {media_type: f"{media_type}; charset=utf-8".encode()
                  for media_type in (JSON, GRAPHQL_RESPONSE)}


def _document_hash(query: str) -> str:
    """A short hash of the document's text: the same query has the same hash in every line."""
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def _leading_name(query: str) -> str:
    """The name of the document's first operation, read without parsing; "-" if none."""
    match = LEADING_NAME.match(query)
    return match.group(1) if match else "-"


def _etags(header: str) -> set[str]:
    """The entity tags an ``If-None-Match`` names (weak ones compare by their opaque tag)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result, or :class:`_ClientLeft` once the client disconnects: then ``work`` is
    cancelled, and with it every resolver and upstream call it waits for.

    The body has been read: what ``receive()`` says now is the disconnect (uvicorn sends it when
    the connection closes).
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnect(request.receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise _ClientLeft
    return task.result()


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _require_preflight(request: Request) -> None:
    """Apollo Server's CSRF prevention, for a GET: a header a simple request cannot carry."""
    content_type = request.headers.get("content-type")
    if content_type is not None:
        essence = content_type.split(";")[0].strip().lower()
        if essence and essence not in SIMPLE_CONTENT_TYPES:
            return
    if any(request.headers.get(name, "").strip() for name in PREFLIGHT_HEADERS):
        return
    raise RequestError(
        400, "this GET query may be a cross-site request forgery: send it with the header "
             "`Apollo-Require-Preflight: true` (or `X-Apollo-Operation-Name`, or a "
             "`Content-Type` other than a form's), or as a POST of application/json",
        code=ErrorCode.PREFLIGHT_REQUIRED)


def negotiate(accept: str) -> str:
    """The response media type for an ``Accept`` header (406 when it allows neither)."""
    if not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for item in accept.split(","):
        media, *options = (part.strip() for part in item.split(";"))
        quality = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        # An explicit graphql-response+json wins over json; wildcards mean the legacy json.
        # An event stream is asked for by name, and then wins a tie (graphql-sse's clients).
        candidates = {EVENT_STREAM: (EVENT_STREAM, 3), GRAPHQL_RESPONSE: (GRAPHQL_RESPONSE, 2),
                      JSON: (JSON, 1), "application/*": (JSON, 0), "*/*": (JSON, 0)}
        if media in candidates and quality > 0:
            chosen, rank = candidates[media]
            if best is None or (quality, rank) > best[:2]:
                best = (quality, rank, chosen)
    if best is None:
        raise RequestError(406, f"cannot answer in any type `Accept` allows: use {GRAPHQL_RESPONSE}"
                                f", {JSON} or {EVENT_STREAM}", code=ErrorCode.NOT_ACCEPTABLE)
    return best[2]


def _wants_html(accept: str) -> bool:
    return "text/html" in accept.lower()


def _json(raw: str | bytes, message: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError(400, message) from None


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


def _result_response(data: Any, errors: list[GraphQLError] | None,
                     extensions: dict[str, Any] | None, media_type: str,
                     request_error_code: ErrorCode, codes: list[str] | None = None, *,
                     max_bytes: int | None = None) -> Response:
    """The answer's response; the codes of its errors are added to ``codes``. As an event
    stream: one ``next`` event (within ``max_bytes``), then ``complete``."""
    body = _result_body(data, errors, extensions, request_error_code, codes)
    if media_type == EVENT_STREAM:
        return EventStream(_one_event(body if max_bytes is None else _limited(body, max_bytes)))
    status = 400 if _is_request_error(data, errors) and media_type == GRAPHQL_RESPONSE else 200
    return Response(body, status_code=status, media_type=f"{media_type}; charset=utf-8")


def _result_body(data: Any, errors: list[GraphQLError] | None,
                 extensions: dict[str, Any] | None, request_error_code: ErrorCode,
                 codes: list[str] | None = None) -> bytes:
    """A result's JSON; the codes of its errors are added to ``codes``."""
    body: dict[str, Any] = {}
    # No execution happened (parse, validation, variable coercion): the spec sends no `data`.
    if not _is_request_error(data, errors):
        body["data"] = data
    if errors:
        body["errors"] = [_formatted(e, request_error_code) for e in errors]
        if codes is not None:
            codes += [error["extensions"]["code"] for error in body["errors"]]
    if extensions:
        body["extensions"] = extensions
    return orjson.dumps(body)


def _is_request_error(data: Any, errors: list[GraphQLError] | None) -> bool:
    return data is None and bool(errors) and all(e.path is None for e in errors or ())


async def _one_event(body: bytes) -> AsyncIterator[bytes]:
    yield next_frame(body)
    yield COMPLETE


def _limited(body: bytes, max_bytes: int) -> bytes:
    """``body``, or a ``RESPONSE_TOO_LARGE`` error in its place when it is longer."""
    if len(body) <= max_bytes:
        return body
    return orjson.dumps({"data": None, "errors": [_too_large(max_bytes)]})


def _within(response: Response, max_bytes: int, media_type: str) -> Response:
    """The response, or a ``RESPONSE_TOO_LARGE`` error in its place when its body is longer
    than ``max_bytes`` (the work is done, but no client gets an answer that size)."""
    if len(response.body) <= max_bytes:
        return response
    return Response(orjson.dumps({"data": None, "errors": [_too_large(max_bytes)]}),
                    status_code=200, media_type=f"{media_type}; charset=utf-8")


def _too_large(max_bytes: int) -> dict[str, Any]:
    return {"message": f"the answer is larger than {max_bytes} bytes ([limits] "
                       "max_response_bytes): ask for fewer or smaller lists",
            "extensions": {"code": ErrorCode.RESPONSE_TOO_LARGE.value,
                           "maxResponseBytes": max_bytes}}


def _formatted(error: GraphQLError, request_error_code: ErrorCode) -> dict[str, Any]:
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
        return _formatted(error, ErrorCode.GRAPHQL_PARSE_FAILED)
    extensions: dict[str, Any] = {"code": error.code.value}
    retry_after = error.headers.get("Retry-After") if isinstance(error, RequestError) else None
    if retry_after is not None:
        extensions["retryAfter"] = int(retry_after)
    return {"message": bounded(error.message), "extensions": extensions}


def _validated(data: Any, errors: list[GraphQLError] | None) -> bool:
    """Whether the document passed parsing and validation (execution began): no request
    error."""
    return data is not None or not errors or any(e.path is not None for e in errors)


def _persisted_error(error: PersistedError, media_type: str) -> Response:
    if error.status is not None:
        return _json_error(RequestError(error.status, error.message, code=error.code))
    return _result_response(None, [error.graphql_error()], None, media_type, error.code)


def _json_error(error: RequestError) -> Response:
    body = {"errors": [{"message": bounded(error.message),
                        "extensions": {"code": error.code.value}}]}
    return Response(orjson.dumps(body), status_code=error.status, headers=error.headers,
                    media_type="application/json; charset=utf-8")
