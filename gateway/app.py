"""The HTTP edge: GraphQL at ``/graphql`` (over HTTP, Server-Sent Events and WebSocket; and its
playground), ``/healthz``, ``/readyz``, ``/metrics``, CORS, and the process's life: on SIGTERM
every subscription ends (``SHUTTING_DOWN``: clients reconnect elsewhere with their last event
id), ``/readyz`` answers 503 for ``[server] drain_seconds`` while requests are still served,
then uvicorn stops accepting connections and waits up to ``grace_seconds`` for those in flight;
then the change feed, upstream clients and the cache store (its Redis pool) are closed.

Example::

    app = create_app(load_config("gateway.toml"))
    uvicorn.run(app)

Every cache and memo the gateway keeps is made here (directly or by :class:`Runtime`); one
table of them, outermost first. Wall-clock times are those of entries shared between processes.

====================  =============================  ===================  ===================
cache (module)        keyed by                       answers up to        bounded by
====================  =============================  ===================  ===================
response cache        document hash, operation,      the shortest         memory tier: bytes
(response_cache)      variables, language, client    freshness of the     (``max_bytes``);
                                                     upstream answers     Redis: its own
                                                     used, ≤ max TTL      maxmemory
document cache        query text (accepted           (parsed text: no     estimated bytes
(graph/documents)     documents only)                age)                 ([limits] document_
                                                                          cache_bytes), LRU
validation verdicts   the document cache's entry     (no age)             its entry; cost
(graph/documents)                                                         prices change: ≤ 4
plan cache            document, operation name,      (no age)             the documents the
(graph/compiled)      directive variables                                 document cache keeps
upstream store        format, source, credential     TTL (groups or       memory: ours, by
(upstream/cache,      (the client's own when passed  products) + stale    bytes; Redis:
upstream/store)       through), path + sorted        grace on failure     maxmemory
                      query, language
in-flight dedup       the upstream store's key       the call in flight   calls in flight
(upstream/dedup)
decoded JSON, parsed  upstream store entry           that entry's life    entries per source
records (upstream/
client)
group tables          source, language, credential   the freshness of     languages per
(sources/base)                                       the answers read     source
                                                     for them
per-request memos     call, field, group             the request          the request
(scope.RequestScope)
APQ documents         document SHA-256 (documents,   apq_ttl_seconds      as the upstream
(persisted)           not answers: no credential)                         store (shared)
====================  =============================  ===================  ===================
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

from graphql import DocumentNode, GraphQLError, specified_rules, validate
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry import Schema

from gateway.auth import Authenticator
from gateway.changes.feed import ChangeFeed
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import Config, ConfigError, load_config
from gateway.endpoint import GraphQLEndpoint
from gateway.graph import build_schema
from gateway.graph.compiled import PlanCache
from gateway.graph.cost import CostModel
from gateway.graph.documents import DocumentCache
from gateway.metrics import CONTENT_TYPE, worker_exited
from gateway.persisted import (
    PersistedOperations,
    TrustedDocumentError,
    document_store,
    load_trusted,
)
from gateway.playground import DEFAULT_ASSETS, Playground
from gateway.rate_limits import RateLimits
from gateway.response_cache import ResponseCache
from gateway.runtime import Runtime
from gateway.serving import Drain, freeze_startup_heap
from gateway.tracing import Tracing, tracing_for
from gateway.websocket import GraphQLWebSockets

__all__ = ["CONFIG_ENV", "app_from_env", "create_app"]

CONFIG_ENV = "GATEWAY_CONFIG"
# How long a stopping process waits for its streams to send their last words (a client that
# does not read holds one this long at most).
STREAMS_END_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    """Liveness: the process serves HTTP. Readiness of sources is another question."""
    return JSONResponse({"status": "ok"})


def create_app(config: Config, *, clock: Clock = SYSTEM_CLOCK,
               tracing: Tracing | None = None) -> Starlette:
    """The gateway as an ASGI app for ``config`` (``clock``: what every cache reads time on;
    ``tracing``: spans to these instead of what ``[tracing]`` configures, for tests)."""
    server = config.server
    tracing = tracing or tracing_for(config.tracing)
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(server.cors_origins),
            allow_origin_regex=server.cors_origin_regex,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=[
                "content-type",
                "accept",
                "accept-language",
                "authorization",
                "x-request-id",
                "x-gateway-cost",
                "traceparent",
                "tracestate",
                # What a GET query carries under CSRF prevention (gateway/endpoint.py).
                "apollo-require-preflight",
                "x-apollo-operation-name",
                # Client authentication and the sources' pass-through credentials.
                "x-api-key",
                *(s.pass_through_header.lower() for s in config.sources
                  if s.pass_through_header),
            ],
            max_age=600,
            expose_headers=["x-request-id"],
        )
    ]
    runtime = Runtime.build(config, clock=clock, tracing=tracing)
    rate_limits = RateLimits(config.rate_limits, cache_url=config.cache.url,
                             namespace=config.cache.namespace)
    drain = Drain(server.drain_seconds)
    changes = ChangeFeed.build(config, runtime.adapters, clock=runtime.clock,
                               metrics=runtime.metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        restore = drain.install()  # SIGTERM drains first (under a uvicorn server in `serve`)
        # The document cache learns the schema's validation rules, so that the first new
        # document is validated in its turn and ahead of execution too (gateway/admission.py).
        await schema.execute("query Started { __typename }")
        await changes.start()
        try:
            yield
        finally:
            restore()
            await changes.aclose()
            await rate_limits.aclose()
            if endpoint.persisted.documents is not None:
                await endpoint.persisted.documents.aclose()
            await runtime.aclose()
            if tracing is not None:
                tracing.shutdown()
            worker_exited()

    async def readyz(request: Request) -> Response:
        """Ready (200) while the gateway can answer at all: a failing source costs only its own
        data; unready (503) while every source's breaker is open. With ``readyz_detail`` also
        each source's breaker state, last error and last success (not for strangers' eyes)."""
        if drain.draining:  # a load balancer stops sending new requests here
            return JSONResponse({"status": "draining"}, status_code=503)
        report = runtime.readiness()
        status = 503 if report["status"] == "unready" else 200
        if not server.readyz_detail:  # "degraded" would say a source is failing
            report = {"status": "unready" if status == 503 else "ready"}
        return JSONResponse(report, status_code=status)

    playground = None
    if server.graphiql:
        assets = Path(server.playground_assets) if server.playground_assets else DEFAULT_ASSETS
        playground = Playground(assets)
    documents = DocumentCache(config.limits)
    plans = PlanCache(documents=documents) if server.compiled_execution else None
    cost = CostModel(runtime.adapters, config.limits.max_cost, config.limits.max_response_values)
    responses = None
    if config.response_cache.enabled:
        shared = runtime.store if runtime.store.url_kind == "redis" else None
        responses = ResponseCache(config.response_cache, clock=runtime.clock, shared=shared)
    schema = build_schema(federation=server.federation, documents=documents, plans=plans,
                          introspection=server.introspection,
                          suggestions=server.field_suggestions, cost=cost)
    endpoint = GraphQLEndpoint(schema,
                               runtime, documents=documents,
                               playground=playground.page if playground else None,
                               max_body_bytes=server.max_body_bytes,
                               access_log=server.access_log, responses=responses,
                               csrf_prevention=server.csrf_prevention,
                               persisted=persisted_operations(config, schema, documents,
                                                              runtime, cost),
                               auth=Authenticator(config.auth, clock=runtime.clock),
                               rate_limits=rate_limits,
                               estimate_cost=partial(cost.cost, schema._schema),
                               cost_extension=server.cost_extension, tracing=tracing,
                               changes=changes)
    websockets = GraphQLWebSockets(endpoint, cors_origins=server.cors_origins,
                                   cors_origin_regex=server.cors_origin_regex)

    async def end_streams() -> None:
        """The process stops: every subscription ends with SHUTTING_DOWN, and its stream with
        it (SSE: the error, then ``complete``; WebSocket: the error, then close 1001)."""
        changes.end_subscriptions()
        await asyncio.gather(endpoint.streams_ended(STREAMS_END_SECONDS),
                             websockets.close_all(STREAMS_END_SECONDS))

    drain.on_stop(end_streams)
    metrics = runtime.metrics

    async def metrics_page(request: Request) -> Response:
        assert metrics is not None
        return Response(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        # On the gateway's port unless [metrics] port moves it (`serve` serves it there).
        *([Route("/metrics", metrics_page, methods=["GET"])]
          if metrics is not None and config.metrics.port is None else []),
        # Every method reaches the endpoint, which answers 405 itself with a JSON body.
        Route("/graphql", endpoint),
        WebSocketRoute("/graphql", websockets),  # subscriptions (graphql-transport-ws)
        *(playground.routes() if playground else []),
    ]
    app = GatewayApp(endpoint, routes=routes, middleware=middleware, lifespan=lifespan)
    # Starlette would answer /graphql/ with a redirect whose location it builds from the
    # client's Host header (a poisoned cache could send others anywhere): 404 instead.
    app.router.redirect_slashes = False
    app.state.config = config
    app.state.runtime = runtime
    app.state.plans = plans
    app.state.responses = responses
    app.state.documents = documents
    app.state.cost = cost
    app.state.drain = drain
    app.state.changes = changes
    return app


class GatewayApp(Starlette):
    """The app, with one shortcut: ``/graphql`` over HTTP — the path almost every request
    takes — goes from the middleware (CORS, the error handler) straight to the endpoint, past
    Starlette's exception middleware and router (about a fifth of a response-cache hit's own
    CPU: what ``make bench`` measures against a bare endpoint). Everything else is routed."""

    def __init__(self, graphql: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.graphql = graphql

    def build_middleware_stack(self) -> ASGIApp:
        routed = super().build_middleware_stack()
        direct: ASGIApp = self.graphql
        for middleware in reversed(self.user_middleware):  # as Starlette wraps the router
            direct = middleware.cls(direct, *middleware.args, **middleware.kwargs)
        direct = ServerErrorMiddleware(direct, debug=self.debug)
        return _GraphQLFirst(routed, direct)


class _GraphQLFirst:
    def __init__(self, routed: ASGIApp, direct: ASGIApp) -> None:
        self.routed = routed
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/graphql":
            await self.direct(scope, receive, send)
        else:
            await self.routed(scope, receive, send)


def persisted_operations(config: Config, schema: Schema, documents: DocumentCache,
                         runtime: Runtime, cost: CostModel) -> PersistedOperations:
    """``[persisted]``: APQ documents within their own byte budget (shared through Redis); in
    trusted mode the registered operations, each parsed at the single parse site and validated
    against the schema at start (a document that fails stops the start)."""
    settings = config.persisted
    trusted = None
    if settings.mode == "trusted":
        def check(text: str) -> DocumentNode | list[GraphQLError]:
            try:
                document = documents.parse(text)
            except GraphQLError as error:
                return [error]
            # Registered only within the query-safety limits: the cost rule validates too.
            rules = [*specified_rules, cost.rule()]
            return validate(schema._schema, document, rules) or document

        try:
            trusted = load_trusted(settings, check)
        except TrustedDocumentError as exc:
            raise ConfigError(f"[persisted]: {exc}") from None
    kept = document_store(settings, cache_url=config.cache.url,
                          namespace=config.cache.namespace, clock=runtime.clock)
    return PersistedOperations(settings, documents=kept, trusted=trusted)


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and worker processes: config path from $GATEWAY_CONFIG."""
    app = create_app(load_config(os.environ[CONFIG_ENV]))
    freeze_startup_heap()
    return app
