"""The HTTP edge: a Starlette app serving GraphQL at ``/graphql`` and liveness at ``/healthz``.

Example::

    app = create_app(load_config("gateway.toml"))
    uvicorn.run(app)
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from gateway.config import Config, load_config
from gateway.graph import build_schema
from gateway.graph.context import GatewayContext
from gateway.runtime import Runtime
from gateway.upstream.client import RequestScope

__all__ = ["CONFIG_ENV", "app_from_env", "create_app"]

CONFIG_ENV = "GATEWAY_CONFIG"


class GatewayGraphQL(GraphQL[GatewayContext, None]):
    """Strawberry's ASGI view, with our request context."""

    def __init__(self, runtime: Runtime) -> None:
        config = runtime.config
        super().__init__(build_schema(), graphql_ide="graphiql" if config.server.graphiql else None)
        self.config = config
        self.adapters = runtime.adapters

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GatewayContext:
        scope = RequestScope(
            language=request.headers.get("accept-language"),
            request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
            deadline=time.monotonic() + self.config.server.request_timeout_seconds,
        )
        return GatewayContext(config=self.config, adapters=self.adapters, scope=scope)


async def healthz(request: Request) -> Response:
    """Liveness: the process serves HTTP. Readiness of sources is another question."""
    return JSONResponse({"status": "ok"})


def create_app(config: Config) -> Starlette:
    """The gateway as an ASGI app for ``config``."""
    server = config.server
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
            ],
            max_age=600,
        )
    ]
    runtime = Runtime.build(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await runtime.aclose()

    async def readyz(request: Request) -> Response:
        """Readiness per source: breaker state, last error, last success. 200 while the
        gateway can answer at all: a failing source costs only its own data."""
        return JSONResponse(runtime.readiness())

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/graphql", GatewayGraphQL(runtime), methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.config = config
    app.state.runtime = runtime
    return app


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and worker processes: config path from $GATEWAY_CONFIG."""
    return create_app(load_config(os.environ[CONFIG_ENV]))
