"""The HTTP edge: GraphQL at ``/graphql`` (and its playground), ``/healthz``, ``/readyz``,
``/metrics``, CORS, and the process's life: on SIGTERM ``/readyz`` answers 503 for ``[server]
drain_seconds`` while requests are still served, then uvicorn stops accepting connections and
waits up to ``grace_seconds`` for those in flight; then upstream clients and the cache store
(its Redis pool) are closed.

Example::

    app = create_app(load_config("gateway.toml"))
    uvicorn.run(app)

Every cache and memo the gateway keeps is made here (directly or by :class:`Runtime`); one
table of them, outermost first. Wall-clock times are those of entries shared between processes.

====================  =============================  ===================  ===================
cache (module)        keyed by                       answers up to        bounded by
====================  =============================  ===================  ===================
response cache        query text, operation,         the shortest         memory tier: bytes
(response_cache)      variables, language, client    freshness of the     (``max_bytes``);
                                                     upstream answers     Redis: its own
                                                     used, ≤ max TTL      maxmemory
document cache        query text                     (parsed text: no     entries
(graph/documents)                                    age)
validation cache      document                       (no age)             entries
(strawberry)
plan cache            document, operation name,      (no age)             entries
(graph/compiled)      directive variables
upstream store        format, source, credential,    TTL (groups or       memory: aiocache;
(upstream/cache,      path + sorted query,           products) + stale    Redis: maxmemory
upstream/store)       language                       grace on failure
in-flight dedup       the upstream store's key       the call in flight   calls in flight
(upstream/dedup)
decoded JSON, parsed  upstream store entry           that entry's life    entries per source
records (upstream/
client)
group tables          source, language               the freshness of     languages per
(sources/base)                                       the answers read     source
                                                     for them
per-request memos     call, field, group             the request          the request
(scope.RequestScope)
====================  =============================  ===================  ===================
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import Config, load_config
from gateway.endpoint import Estimate, GraphQLEndpoint
from gateway.graph import build_schema
from gateway.graph.compiled import PlanCache
from gateway.graph.documents import DocumentCache
from gateway.metrics import CONTENT_TYPE, worker_exited
from gateway.playground import DEFAULT_ASSETS, Playground
from gateway.response_cache import ResponseCache
from gateway.runtime import Runtime
from gateway.serving import Drain
from gateway.tracing import Tracing, tracing_for

__all__ = ["CONFIG_ENV", "app_from_env", "create_app"]

CONFIG_ENV = "GATEWAY_CONFIG"


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
            ],
            max_age=600,
            expose_headers=["x-request-id"],
        )
    ]
    runtime = Runtime.build(config, clock=clock, tracing=tracing)
    drain = Drain(server.drain_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        restore = drain.install()  # SIGTERM drains first (under a uvicorn server in `serve`)
        try:
            yield
        finally:
            restore()
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
    documents = DocumentCache()
    plans = PlanCache() if server.compiled_execution else None
    responses = None
    if config.response_cache.enabled:
        shared = runtime.store if runtime.store.url_kind == "redis" else None
        responses = ResponseCache(config.response_cache, clock=runtime.clock, shared=shared)
    endpoint = GraphQLEndpoint(build_schema(federation=server.federation, documents=documents,
                                            plans=plans, introspection=server.introspection,
                                            suggestions=server.field_suggestions),
                               runtime, documents=documents,
                               playground=playground.page if playground else None,
                               max_body_bytes=server.max_body_bytes,
                               access_log=server.access_log, responses=responses,
                               csrf_prevention=server.csrf_prevention,
                               cost_extension=server.cost_extension, estimate=_estimate(),
                               tracing=tracing)
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
        *(playground.routes() if playground else []),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    # Starlette would answer /graphql/ with a redirect whose location it builds from the
    # client's Host header (a poisoned cache could send others anywhere): 404 instead.
    app.router.redirect_slashes = False
    app.state.config = config
    app.state.runtime = runtime
    app.state.plans = plans
    app.state.responses = responses
    app.state.drain = drain
    return app


def _estimate() -> Estimate | None:
    """The query-safety rule's price of an operation, for ``extensions.cost.estimated``.

    None until the cost rule (gateway/graph/cost.py) is merged; then this returns
    ``lambda document, name: model.cost(schema, document, name)`` with its CostModel.
    """
    return None


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and worker processes: config path from $GATEWAY_CONFIG."""
    return create_app(load_config(os.environ[CONFIG_ENV]))
