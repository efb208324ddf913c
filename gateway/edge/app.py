"""The gateway as one ASGI app, put together from its parts: GraphQL at ``/graphql`` (over HTTP,
Server-Sent Events and WebSocket; and its playground), ``/healthz``, ``/readyz``, ``/metrics``,
CORS, and the process's life: on SIGTERM every subscription ends (``SHUTTING_DOWN``: clients
reconnect elsewhere with their last event id), ``/readyz`` answers 503 for ``[server]
drain_seconds`` while requests are still served, then uvicorn stops accepting connections and
waits up to ``grace_seconds`` for those in flight; then the change feed, upstream clients and
the cache store (its Redis pool) are closed. On SIGHUP the configuration is read again and, if
it passes its checks, served from the next request on (:mod:`gateway.edge.generations`).

This is the one module that imports every part (the layers: ``tests/test_imports.py``); the
caches it makes are listed in :mod:`gateway.caches`.

Example::

    app = create_app(load_config("gateway.toml"))
    uvicorn.run(app)
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from graphql import DocumentNode, GraphQLError, specified_rules, validate
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry import Schema

from gateway.access.auth import Authenticator
from gateway.access.rate_limits import RateLimits
from gateway.caches.responses import ResponseCache
from gateway.changes.feed import ChangeFeed
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import Config, ConfigError, fingerprint, load_config
from gateway.edge.admission import Admission
from gateway.edge.caching import Caching, NoResponseCache, ResponseCaching
from gateway.edge.contexts import Contexts
from gateway.edge.endpoint import GraphQLEndpoint
from gateway.edge.generations import GatewayApp, Generation, GraphQLParts
from gateway.edge.observe import Observed
from gateway.edge.persisted import (
    PersistedOperations,
    TrustedDocumentError,
    document_store,
    load_trusted,
)
from gateway.edge.playground import DEFAULT_ASSETS, Playground
from gateway.edge.request import RequestReader
from gateway.edge.runtime import Runtime
from gateway.edge.serving import Drain, freeze_startup_heap
from gateway.edge.streams import EventStreams
from gateway.edge.websocket import GraphQLWebSockets
from gateway.graph import build_schema
from gateway.graph.compiled import PlanCache
from gateway.graph.cost import CostModel
from gateway.graph.documents import DocumentCache
from gateway.graph.strawberry_internals import graphql_schema
from gateway.observability.metrics import CONTENT_TYPE, worker_exited
from gateway.observability.tracing import Tracing, tracing_for

__all__ = ["CONFIG_ENV", "GatewayApp", "app_from_env", "create_app"]

CONFIG_ENV = "GATEWAY_CONFIG"


def create_app(config: Config, *, clock: Clock = SYSTEM_CLOCK,
               tracing: Tracing | None = None,
               config_path: str | Path | None = None) -> GatewayApp:
    """The gateway as an ASGI app for ``config`` (``clock``: what every cache reads time on;
    ``tracing``: spans to these instead of what ``[tracing]`` configures, for tests;
    ``config_path``: the file a reload reads again, on SIGHUP under ``serve``)."""
    tracing = tracing or tracing_for(config.tracing)
    drain = Drain(config.server.drain_seconds)

    async def build(new: Config, previous: Generation | None) -> Generation:
        return generation(new, previous, clock=clock, tracing=tracing, drain=drain)

    first = generation(config, None, clock=clock, tracing=tracing, drain=drain)
    return GatewayApp(first, build=build, drain=drain, tracing=tracing,
                      config_path=config_path, on_exit=worker_exited)


def generation(config: Config, previous: Generation | None, *, clock: Clock,
               tracing: Tracing | None, drain: Drain) -> Generation:
    """The runtime and parts of ``config``; after ``previous``, what the process keeps."""
    runtime = Runtime.build(config, clock=clock, tracing=tracing,
                            previous=previous.runtime if previous else None)
    feed = previous.parts.changes if previous else None
    if feed is None or not feed.keeps(config):
        feed = ChangeFeed.build(config, runtime.adapters, clock=clock, metrics=runtime.metrics)
    parts = graphql_parts(config, runtime, feed,
                          previous_limits=previous.parts.rate_limits if previous else None)
    routed = Starlette(routes=_routes(config, runtime, parts, drain),
                       middleware=[_cors(config)])
    # Starlette would answer /graphql/ with a redirect whose location it builds from the
    # client's Host header (a poisoned cache could send others anywhere): 404 instead.
    routed.router.redirect_slashes = False
    observed: ASGIApp = parts.endpoint
    if runtime.metrics is not None or config.server.access_log or tracing is not None:
        observed = Observed(parts.endpoint, metrics=runtime.metrics,
                            access_log=config.server.access_log, tracing=tracing)
    cors = _cors(config)
    direct = ServerErrorMiddleware(
        CorsForPages(observed, cors.cls(observed, *cors.args, **cors.kwargs)))
    state = routed.state
    state.config, state.runtime, state.drain, state.changes = config, runtime, drain, feed
    state.plans, state.documents, state.cost = parts.plans, parts.documents, parts.cost
    return Generation(config, runtime, parts, routed, direct)


class CorsForPages:
    """CORS on the ``/graphql`` shortcut: Starlette's middleware decides for every request from
    a page (one with an ``Origin``). A request without one (servers, scripts: most of the
    traffic) gets only what that middleware would give it, ``Origin`` added to ``Vary`` (so no
    shared cache hands this answer to a page), without its per-request header parsing and
    wrapping: measured in process, 6 of a response-cache hit's 22 µs."""

    def __init__(self, app: ASGIApp, cors: ASGIApp) -> None:
        self.app = app
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, _ in scope["headers"]:
            if name == b"origin":
                await self.cors(scope, receive, send)
                return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = vary_origin(message.get("headers") or [])
            await send(message)

        await self.app(scope, receive, sending)


def vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Origin`` joined to their ``Vary`` values, in one ``Vary`` header where
    the first was (as Starlette's CORS middleware writes it)."""
    values = [value for name, value in headers if name == b"vary"]
    joined = (b"vary", b", ".join([*values, b"Origin"]))
    if not values:
        return [*headers, joined]
    first = next(i for i, (name, _) in enumerate(headers) if name == b"vary")
    return [joined if i == first else header for i, header in enumerate(headers)
            if i == first or header[0] != b"vary"]


def graphql_parts(config: Config, runtime: Runtime, changes: ChangeFeed, *,
                  previous_limits: RateLimits | None = None) -> GraphQLParts:
    """The schema with its caches and cost model, and the edge's parts around it (after a
    reload, the rate-limit windows of ``previous_limits`` go on)."""
    server, limits = config.server, config.limits
    documents = DocumentCache(limits)
    plans = PlanCache(documents=documents) if server.compiled_execution else None
    cost = CostModel(runtime.adapters, limits.max_cost, limits.max_response_values)
    schema = build_schema(federation=server.federation, documents=documents, plans=plans,
                          introspection=server.introspection,
                          suggestions=server.field_suggestions, cost=cost)
    rate_limits = RateLimits(config.rate_limits, cache=config.cache,
                             namespace=config.cache.namespace, previous=previous_limits)
    persisted = persisted_operations(config, schema, documents, runtime, cost)
    auth = Authenticator(config.auth, clock=runtime.clock)
    admission = Admission(auth=auth, rate_limits=rate_limits, persisted=persisted,
                          documents=documents, schema=schema,
                          estimate_cost=partial(cost.cost, graphql_schema(schema)),
                          clock=runtime.clock)
    contexts = Contexts(runtime, admission=admission, changes=changes)
    streams = EventStreams(schema, max_bytes=limits.max_response_bytes)
    playground = None
    if server.graphiql:
        assets = Path(server.playground_assets) if server.playground_assets else DEFAULT_ASSETS
        playground = Playground(assets)
    endpoint = GraphQLEndpoint(
        schema, reader=RequestReader(max_body_bytes=server.max_body_bytes,
                                     csrf_prevention=server.csrf_prevention),
        admission=admission, contexts=contexts, caching=_caching(config, runtime, auth),
        streams=streams,
        playground=playground.page if playground else None,
        cost_extension=server.cost_extension, max_response_bytes=limits.max_response_bytes)
    websockets = GraphQLWebSockets(schema, admission=admission, contexts=contexts,
                                   settings=config.changes, cors_origins=server.cors_origins,
                                   cors_origin_regex=server.cors_origin_regex)
    return GraphQLParts(schema, documents, plans, cost, persisted, rate_limits, changes, streams,
                        playground, endpoint, websockets)


def _caching(config: Config, runtime: Runtime, auth: Authenticator) -> Caching:
    """``[response_cache]``: in memory, and in Redis too when the store is Redis."""
    if not config.response_cache.enabled:
        return NoResponseCache()
    shared = runtime.store if runtime.store.url_kind == "redis" else None
    responses = ResponseCache(config.response_cache, clock=runtime.clock, shared=shared,
                              generation=fingerprint(config))
    vary = ["Accept", "Accept-Language"]
    if auth.enabled:  # the answer differs by client
        vary += ["Authorization", "X-API-Key"]
    vary += [s.pass_through_header for s in config.sources if s.pass_through_header]
    return ResponseCaching(responses, adapters=runtime.adapters, clock=runtime.clock,
                           vary=vary, metrics=runtime.metrics)


def _cors(config: Config) -> Middleware:
    server = config.server
    return Middleware(
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
            # What a GET query carries under CSRF prevention (gateway/edge/request.py).
            "apollo-require-preflight",
            "x-apollo-operation-name",
            # Client authentication and the sources' pass-through credentials.
            "x-api-key",
            *(s.pass_through_header.lower() for s in config.sources if s.pass_through_header),
        ],
        max_age=600,
        expose_headers=["x-request-id"],
    )


def _routes(config: Config, runtime: Runtime, parts: GraphQLParts, drain: Drain
            ) -> list[BaseRoute]:
    server, metrics = config.server, runtime.metrics

    async def healthz(request: Request) -> Response:
        """Liveness: the process serves HTTP. Readiness of sources is another question."""
        return JSONResponse({"status": "ok"})

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

    async def metrics_page(request: Request) -> Response:
        assert metrics is not None
        return Response(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        # On the gateway's port unless [metrics] port moves it (`serve` serves it there).
        *([Route("/metrics", metrics_page, methods=["GET"])]
          if metrics is not None and config.metrics.port is None else []),
        WebSocketRoute("/graphql", parts.websockets),  # subscriptions (graphql-transport-ws)
        *(parts.playground.routes() if parts.playground else []),
    ]


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
            return validate(graphql_schema(schema), document, rules) or document

        try:
            trusted = load_trusted(settings, check)
        except TrustedDocumentError as exc:
            raise ConfigError(f"[persisted]: {exc}") from None
    kept = document_store(settings, cache=config.cache,
                          namespace=config.cache.namespace, clock=runtime.clock)
    return PersistedOperations(settings, documents=kept, trusted=trusted)


def app_from_env() -> GatewayApp:
    """Factory for ``uvicorn --factory`` and worker processes: config path from $GATEWAY_CONFIG."""
    path = os.environ[CONFIG_ENV]
    app = create_app(load_config(path), config_path=path)
    freeze_startup_heap()
    return app
