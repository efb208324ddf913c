"""The HTTP edge: a Starlette app serving GraphQL at ``/graphql`` and liveness at ``/healthz``.

Example::

    app = create_app(load_config("gateway.toml"))
    uvicorn.run(app)
"""

from __future__ import annotations

import contextlib
import os
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
from gateway.sources import SourceAdapter, build_adapter
from gateway.upstream.client import RequestScope

__all__ = ["CONFIG_ENV", "app_from_env", "create_app"]

CONFIG_ENV = "GATEWAY_CONFIG"


class GatewayGraphQL(GraphQL[GatewayContext, None]):
    """Strawberry's ASGI view, with our request context."""

    def __init__(self, config: Config, adapters: dict[str, SourceAdapter]) -> None:
        super().__init__(build_schema(), graphql_ide="graphiql" if config.server.graphiql else None)
        self.config = config
        self.adapters = adapters

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GatewayContext:
        scope = RequestScope(
            language=request.headers.get("accept-language"),
            request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
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
    adapters = {source.name: build_adapter(source) for source in config.sources}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for adapter in adapters.values():
            await adapter.client.aclose()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/graphql", GatewayGraphQL(config, adapters), methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.config = config
    return app


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and worker processes: config path from $GATEWAY_CONFIG."""
    return create_app(load_config(os.environ[CONFIG_ENV]))
