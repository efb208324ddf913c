"""The gateway app serves one configuration at a time, a :class:`Generation`: the runtime (the
upstream clients, caches, breakers) and the GraphQL parts built from it. A reload (SIGHUP, or
:meth:`GatewayApp.reload`) reads the file again, refuses it with the same messages as
``check-config`` when it fails them (the running configuration stays), else builds the next
generation beside the running one and swaps them between two requests.

What is in flight keeps the generation it began on: a request finishes there, and so does a
stream (SSE, WebSocket) opened before the swap; a generation is closed once it was replaced
and the last of them ended. The change feed belongs to the process, not to a generation: its
pollers are replaced, its subscriptions stay (one naming a removed source ends with
``SOURCE_REMOVED``). The process's own things stay too: the drain, metrics and tracing.

Caches whose entries depend on the configuration start afresh with the generation (the
response cache, whose shared keys carry the configuration's fingerprint; the document and plan
caches, whose documents were priced under the old limits). The upstream store is kept while
``[cache]`` is unchanged: an upstream answer does not depend on the rest.

Example::

    app = create_app(load_config(path), config_path=path)
    ...
    await app.reload()  # True: applied; False: refused, logged, the old one serves on
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from strawberry import Schema

    from gateway.access.rate_limits import RateLimits
    from gateway.changes.feed import ChangeFeed
    from gateway.edge.endpoint import GraphQLEndpoint
    from gateway.edge.persisted import PersistedOperations
    from gateway.edge.playground import Playground
    from gateway.edge.runtime import Runtime
    from gateway.edge.serving import Drain
    from gateway.edge.streams import EventStreams
    from gateway.edge.websocket import GraphQLWebSockets
    from gateway.graph.compiled import PlanCache
    from gateway.graph.cost import CostModel
    from gateway.graph.documents import DocumentCache
    from gateway.observability.tracing import Tracing

__all__ = ["RESTART_ONLY", "GatewayApp", "Generation", "GraphQLParts"]

logger = logging.getLogger("gateway.runtime")
# How long a stopping process waits for its streams to send their last words (a client that
# does not read holds one this long at most).
STREAMS_END_SECONDS = 2.0

# What a reload cannot change in a running process, and why (docs/operations.md, "Reloading").
RESTART_ONLY = {
    "server.host": "the listening socket is bound at start",
    "server.port": "the listening socket is bound at start",
    "server.header_timeout_seconds": "uvicorn's protocol is set up at start",
    "server.body_timeout_seconds": "uvicorn's protocol is set up at start",
    "server.keep_alive_seconds": "uvicorn's protocol is set up at start",
    "server.grace_seconds": "uvicorn's shutdown is set up at start",
    "server.forwarded_allow_ips": "uvicorn's proxy headers are set up at start",
    "logging": "the log handlers are set up at start",
    "metrics": "the metrics registry (and its port) live as long as the process",
    "tracing": "the exporter lives as long as the process",
}


@dataclass
class GraphQLParts:
    """What serves ``/graphql``, and what the app must close or reach."""

    schema: Schema
    documents: DocumentCache
    plans: PlanCache | None
    cost: CostModel
    persisted: PersistedOperations
    rate_limits: RateLimits
    changes: ChangeFeed
    streams: EventStreams
    playground: Playground | None
    endpoint: GraphQLEndpoint
    websockets: GraphQLWebSockets


@dataclass(eq=False)
class Generation:
    """One configuration's runtime and parts, and the requests in flight on them."""

    config: Config
    runtime: Runtime
    parts: GraphQLParts
    routed: Starlette  # everything but /graphql over HTTP
    direct: ASGIApp  # /graphql over HTTP, past Starlette's router (see GatewayApp)
    active: int = 0  # requests and streams in flight on it

    async def warm(self) -> None:
        # The document cache learns the schema's validation rules, so that the first new
        # document is validated in its turn and ahead of execution too (edge/admission.py).
        await self.parts.schema.execute("query Started { __typename }")

    async def aclose(self, *, keep_store: bool = False) -> None:
        """Close what this generation alone holds (the feed is the process's)."""
        parts = self.parts
        await parts.rate_limits.aclose()
        if parts.persisted.documents is not None:
            await parts.persisted.documents.aclose()
        await self.runtime.aclose(keep_store=keep_store)


Build = Callable[[Config, "Generation | None"], Awaitable["Generation"]]


class GatewayApp:
    """The app, with one shortcut: ``/graphql`` over HTTP — the path almost every request
    takes — goes from the error handler and CORS (and the observing middleware, when anything
    observes) straight to the endpoint, past Starlette's exception middleware and router: they
    were about a fifth of a response-cache hit's own CPU, what ``make bench`` measures against
    a bare endpoint. Everything else (WebSockets, ``/healthz``, ``/readyz``, ``/metrics``, the
    playground's assets) goes through the generation's routed Starlette app; the lifespan is
    the process's."""

    def __init__(self, first: Generation, *, build: Build, drain: Drain,
                 tracing: Tracing | None, config_path: str | Path | None,
                 on_exit: Callable[[], None] = lambda: None) -> None:
        self.current = first
        self.drain = drain
        self.tracing = tracing
        self.config_path = config_path
        self._build = build
        self._on_exit = on_exit
        self._live: set[Generation] = {first}  # the current one, and retired ones in use
        self._reloading = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()
        self._lifespan = Router(lifespan=self._lifespan_context)
        drain.on_stop(self._end_streams)

    @property
    def state(self) -> State:
        return self.current.routed.state

    @property
    def router(self) -> Router:
        return self.current.routed.router

    @property
    def graphql(self) -> GraphQLEndpoint:
        """The endpoint itself, for what tests look into."""
        return self.current.parts.endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        generation = self.current
        generation.active += 1
        try:
            if scope["type"] == "http" and scope["path"] == "/graphql":
                await generation.direct(scope, receive, send)
            else:
                await generation.routed(scope, receive, send)
        finally:
            generation.active -= 1
            if generation is not self.current and not generation.active:
                self._close_later(generation)

    async def reload(self, config: Config | None = None) -> bool:
        """Apply ``config`` (by default the file read again); False when it is refused (the
        file fails its checks, or the parts cannot be built): logged, and the running
        configuration serves on."""
        async with self._reloading:
            outcome = await self._reload(config)
        metrics = self.current.runtime.metrics
        if metrics is not None:
            metrics.config_reloads.labels("applied" if outcome else "refused").inc()
        return outcome

    async def _reload(self, config: Config | None) -> bool:
        previous = self.current
        try:
            if config is None:
                if self.config_path is None:
                    raise ConfigError("no configuration file to read again (the app was "
                                      "made from a configuration in memory)")
                config = await asyncio.to_thread(load_config, self.config_path)
            generation = await self._build(config, previous)
            await generation.warm()
        except ConfigError as exc:
            logger.error("configuration reload refused; the running configuration stays:\n%s",
                         exc, extra={"reload": "refused"})
            return False
        except Exception:
            logger.exception("configuration reload refused; the running configuration stays",
                             extra={"reload": "refused"})
            return False
        await self._move_feed(previous, generation)
        self.drain.seconds = config.server.drain_seconds
        previous.parts.endpoint.admission.hand_over(generation.parts.endpoint.admission)
        self._live.add(generation)
        self.current = generation
        if not previous.active:
            self._close_later(previous)
        before = {s.name for s in previous.config.sources}
        after = {s.name for s in config.sources}
        logger.info("configuration reloaded", extra={
            "reload": "applied", "sources": sorted(after),
            "added": sorted(after - before), "removed": sorted(before - after)})
        for key in restart_only_changes(previous.config, config):
            logger.warning("configuration reload: %s changed but takes effect at the next "
                           "restart (%s)", key, RESTART_ONLY[key], extra={"reload": "applied"})
        return True

    @staticmethod
    async def _move_feed(previous: Generation, generation: Generation) -> None:
        """The feed goes on with the new sources, or (a new backend) a new feed replaces it:
        the old one's subscribers reconnect with their last event id."""
        old, new = previous.parts.changes, generation.parts.changes
        if new is old:
            await new.reconfigure(generation.config, generation.runtime.adapters)
            return
        await new.start()
        await old.aclose()

    def _close_later(self, generation: Generation) -> None:
        if generation not in self._live:
            return
        self._live.discard(generation)
        task = asyncio.ensure_future(generation.aclose(
            keep_store=self._store_in_use(generation)))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _store_in_use(self, generation: Generation) -> bool:
        """Whether a generation still live took ``generation``'s upstream store over."""
        return any(g.runtime.store is generation.runtime.store for g in self._live)

    async def _end_streams(self) -> None:
        """The process stops: every subscription ends with SHUTTING_DOWN, and its stream with
        it (SSE: the error, then ``complete``; WebSocket: the error, then close 1001)."""
        self.current.parts.changes.end_subscriptions()
        waits = []
        for generation in self._live:  # the current one, and retired ones streams still use
            waits += [generation.parts.streams.ended(STREAMS_END_SECONDS),
                      generation.parts.websockets.close_all(STREAMS_END_SECONDS)]
        await asyncio.gather(*waits)

    @contextlib.asynccontextmanager
    async def _lifespan_context(self, app: Any) -> AsyncIterator[None]:
        restore_term = self.drain.install()  # SIGTERM drains first (under `serve`)
        restore_hup = self._install_reload()
        await self.current.warm()
        await self.current.parts.changes.start()
        try:
            yield
        finally:
            restore_hup()
            restore_term()
            await self.current.parts.changes.aclose()
            for generation in list(self._live):
                self._live.discard(generation)
                await generation.aclose(keep_store=self._store_in_use(generation))
            if self._closing:
                await asyncio.gather(*self._closing, return_exceptions=True)
            if self.tracing is not None:
                self.tracing.shutdown()
            self._on_exit()

    def _install_reload(self) -> Callable[[], None]:
        """SIGHUP reloads, in a process serving from a file in its main thread (``serve``,
        each of its workers); elsewhere (the demo, the tests' servers) nothing changes."""
        if self.config_path is None or threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        reloads: set[asyncio.Task[bool]] = set()

        def on_hup() -> None:
            logger.info("SIGHUP: reloading the configuration", extra={"reload": "asked"})
            task = loop.create_task(self.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)

        def restore() -> None:
            loop.remove_signal_handler(signal.SIGHUP)

        return restore


def restart_only_changes(old: Config, new: Config) -> list[str]:
    """The keys of :data:`RESTART_ONLY` whose values differ between ``old`` and ``new``."""
    changed = []
    for key in RESTART_ONLY:
        section, _, name = key.partition(".")
        before, after = getattr(old, section), getattr(new, section)
        if name:
            before, after = getattr(before, name), getattr(after, name)
        if before != after:
            changed.append(key)
    return changed
