"""Serve several ASGI apps with uvicorn in one process: in the foreground, or in a thread.

``make run`` serves the gateway and the four emulators in one event loop; tests and benchmarks
serve them in a background thread on ports chosen by the OS. Sockets are bound before the servers
start, so every URL is known up front (a gateway's config can point at emulators not yet serving).

Example::

    with ServerThread({"echo": app}) as servers:
        httpx.get(servers.urls["echo"] + "/healthz")
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import uvicorn
import uvloop
from starlette.types import ASGIApp
from uvicorn.supervisors.multiprocess import Multiprocess

from gateway.config import (
    Config,
    ConfigError,
    ServerSettings,
    config_from_text,
    read_config_text,
)
from gateway.edge.protocol import http_protocol
from gateway.observability.logs import log_config

__all__ = ["LOG_LEVELS", "BoundApp", "Drain", "GatewayServer", "ServerThread", "Supervisor",
           "bind", "freeze_startup_heap", "serve_forever", "serve_workers", "uvicorn_options"]

logger = logging.getLogger("gateway.runtime")
T = TypeVar("T")

# uvicorn's levels ("trace" is its own, below debug), most severe first.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


class Drain:
    """SIGTERM first drains: ``/readyz`` answers 503 (``draining``) for ``seconds`` while every
    request is still served, so a load balancer stops sending new ones; then the uvicorn
    server shuts down as it does on a signal (stops accepting, waits for the requests in
    flight up to its ``timeout_graceful_shutdown``, runs the app's lifespan shutdown) and the
    process exits with status 0. A second SIGTERM ends the drain at once.

    :meth:`install`, from the app's lifespan, takes over SIGTERM from the uvicorn server that
    serves the app in this process's main thread (``serve``, each of its workers); elsewhere
    (the demo's and the tests' servers) it does nothing.

    The hooks given to :meth:`on_stop` run once, when the process begins to stop: as a drain
    starts, or when a :class:`GatewayServer` shuts down (before it waits for the connections
    still open). Long-lived streams (subscriptions) end there, with a reason their clients can
    reconnect on, instead of holding the shutdown until uvicorn cuts them.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.draining = False
        self._hooks: list[Callable[[], Awaitable[None]]] = []
        self._stopping: asyncio.Future[None] | None = None

    def on_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._hooks.append(hook)

    async def stop(self) -> None:
        """Run the stop hooks (the first call; later ones wait for it)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._run_hooks())
        await asyncio.shield(self._stopping)

    async def _run_hooks(self) -> None:
        for hook in self._hooks:
            try:
                await hook()
            except Exception:
                logger.exception("a stop hook failed")

    def install(self) -> Callable[[], None]:
        """Take over SIGTERM; returns what gives it back."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGTERM)
        server = getattr(previous, "__self__", None)
        if not isinstance(server, uvicorn.Server):
            return lambda: None
        loop = asyncio.get_running_loop()

        def stop() -> None:
            server.should_exit = True

        def on_term(signum: int, frame: object) -> None:
            if self.draining:
                loop.call_soon_threadsafe(stop)
                return
            self.draining = True
            logger.info("SIGTERM: draining", extra={"drain_seconds": self.seconds})
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.stop()))
            loop.call_soon_threadsafe(loop.call_later, self.seconds, stop)

        signal.signal(signal.SIGTERM, on_term)

        def restore() -> None:
            signal.signal(signal.SIGTERM, previous)

        return restore


class Supervisor(Multiprocess):
    """uvicorn's supervisor of ``--workers``, with two changes.

    Its own copy of the listening socket is closed as the workers are told to stop. Each
    worker drains, then closes its copy; the socket stops listening only when every copy is
    closed, and uvicorn's parent kept its own until the end: connections made after the drain
    queued in the backlog, never answered, instead of being refused at once (a balancer
    retries a refused connection elsewhere).

    SIGHUP reloads the configuration in each worker in place, where uvicorn would restart them
    all (dropping their subscriptions) on a file it never checked. Workers read ``served``, a
    copy of the operator's ``source`` file that only a checked file replaces: a worker started
    later (one that died) starts on the configuration that is running, never on a broken
    file. A worker is signalled once it has started (its SIGHUP handler is installed with
    the app); one still starting is signalled as soon as it has.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], *,
                 source: Path | None = None, served: Path | None = None) -> None:
        super().__init__(config, sockets)
        self.source, self.served = source, served
        self._pending: set[int] = set()  # workers still starting when a reload was asked

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()

    def handle_hup(self) -> None:
        if self.source is not None and self.served is not None:
            try:  # the text checked is the text served: the file may change meanwhile
                text = read_config_text(self.source)
                config_from_text(text, origin=self.source)
            except ConfigError as exc:
                logger.error("SIGHUP: configuration reload refused; the running configuration "
                             "stays:\n%s", exc, extra={"reload": "refused"})
                return
            serve_text(text, self.served)
        logger.info("SIGHUP: reloading the configuration in %d workers", len(self.processes),
                    extra={"reload": "asked"})
        for process in self.processes:
            self._reload(process)

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        for process in self.processes:
            if process.pid in self._pending:
                self._reload(process)

    def _reload(self, process: Any) -> None:
        pid = process.pid
        if pid is None:
            return
        if not process.is_ready(timeout=0.5):
            self._pending.add(pid)
            return
        self._pending.discard(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGHUP)


def serve_text(text: str, served: Path) -> None:
    """A checked configuration's ``text`` into ``served`` at once (a worker reading it sees
    the old text or the new)."""
    partial = served.with_suffix(".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(served)


def serve_workers(config: uvicorn.Config, *, source: Path | None = None,
                  served: Path | None = None) -> None:
    """``uvicorn.run`` with ``config.workers`` workers, under :class:`Supervisor` (reading
    the configuration from ``served``, a checked copy of ``source``)."""
    sock = config.bind_socket()
    try:
        Supervisor(config, sockets=[sock], source=source, served=served).run()
    finally:
        sock.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: the OS picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class BoundApp:
    """An app and the socket it will be served on."""

    app: ASGIApp
    sock: socket.socket

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"


def uvicorn_options(settings: ServerSettings | None) -> dict[str, Any]:
    """uvicorn's options every server of the gateway runs with, from ``[server]`` (defaults for
    an app without a configuration, such as an emulator).

    Deadlines for a request's headers and body (:mod:`gateway.edge.protocol`), the keep-alive of
    idle connections, no ``server`` header (it tells a stranger what to attack), and WebSockets
    (subscriptions: :mod:`gateway.edge.websocket`) by the implementation that waits for a slow
    reader (its sends wait while the socket's buffer is full, so a subscriber that does not read
    falls behind and is dropped instead of growing the buffer), with messages of at most
    ``max_body_bytes`` and no compression (a zlib state per connection is memory it would hold
    for as long as it stays open).

    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from the proxies of
    ``forwarded_allow_ips``; with none (the default) they are not read at all. uvicorn's own
    default trusts them from 127.0.0.1 (or ``$FORWARDED_ALLOW_IPS``): behind a proxy on the same
    host, any client could then name its own address, and be a new anonymous client (a fresh
    rate limit) with every request.
    """
    settings = settings or ServerSettings()
    return {"http": http_protocol(header_timeout=settings.header_timeout_seconds,
                                  body_timeout=settings.body_timeout_seconds),
            "ws": "websockets-sansio", "ws_max_size": settings.max_body_bytes,
            "ws_per_message_deflate": False, "server_header": False,
            "timeout_keep_alive": int(settings.keep_alive_seconds),
            "timeout_graceful_shutdown": int(settings.grace_seconds),
            "proxy_headers": bool(settings.forwarded_allow_ips),
            "forwarded_allow_ips": list(settings.forwarded_allow_ips)}


# Allocations between two young-generation collections (CPython's default: 700). A query in
# flight holds a few thousand young objects (its answer's dicts and lists); with 700, each was
# walked by several collections and promoted before the query ended. Measured under make bench's
# load: garbage collection 12 % of the CPU with 700, 7 % with 5,000. 20,000 took a further 0.4 ms
# off an uncached merged query, but a process parsing large documents then held more memory
# than its byte budgets allow (tests/resilience/test_heavy_requests.py: 33.6 MB grown, 32 MB
# allowed), so the bound on memory wins.
YOUNG_GENERATION_THRESHOLD = 5_000


def freeze_startup_heap() -> None:
    """Tune the garbage collector for serving: move everything the process has built so far
    (modules, the schema, the app) out of its reach, since they live as long as the process yet
    every full collection would walk all of them (over 100,000 objects); and collect the young
    generation less often (:data:`YOUNG_GENERATION_THRESHOLD`); and give large blocks back to
    the system when they are freed (:func:`_return_large_blocks`). Called once by the server
    process, after the app is built."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
    _return_large_blocks()


# glibc's mallopt parameter, and the size from which a block is mapped on its own.
M_MMAP_THRESHOLD = -3
LARGE_BLOCK_BYTES = 256 * 1024


def _return_large_blocks() -> None:
    """Blocks of :data:`LARGE_BLOCK_BYTES` or more (a request body near ``max_body_bytes``, its
    text, their copies) are mapped on their own and unmapped when freed. glibc's own threshold
    moves up to 32 MB as such blocks are freed, after which they come from the heap and stay
    in the process: 400 requests of 900 KB grew it by 20 MB more than what it kept. Upstream
    answers (an Axim page: ~120 KB) stay below. Nothing is done where the C library is not
    glibc."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)


def _settings(app: ASGIApp) -> ServerSettings | None:
    """The ``[server]`` settings of a gateway app (``create_app`` keeps its config in its state)."""
    config = getattr(getattr(app, "state", None), "config", None)
    return config.server if isinstance(config, Config) else None


class GatewayServer(uvicorn.Server):
    """uvicorn's server that first runs a gateway app's stop hooks (:class:`Drain`) when it
    shuts down: its open streams end with a reason before it waits for them."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        drain = getattr(getattr(self.config.app, "state", None), "drain", None)
        if isinstance(drain, Drain):
            await drain.stop()
        await super().shutdown(sockets)


class _Server(GatewayServer):
    # Several servers share one loop: signals are handled once, by serve_forever.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _servers(bound: Mapping[str, BoundApp], log_level: str) -> list[tuple[_Server, BoundApp]]:
    # Several servers in one process: uvicorn's own start-up and shut-down lines (info), once
    # per server, would bury what matters; they show at debug. The gateway's loggers (its
    # access log among them) follow ``log_level``.
    own = "warning" if log_level == "info" else log_level
    return [
        (_Server(uvicorn.Config(b.app, lifespan="auto", log_level=own, access_log=False,
                                log_config=log_config(log_level, _log_format(b.app)),
                                **{**uvicorn_options(_settings(b.app)),
                                   "timeout_graceful_shutdown": 2})), b)
        for b in bound.values()
    ]


def _log_format(app: ASGIApp) -> str:
    config = getattr(getattr(app, "state", None), "config", None)
    return config.logging.format if isinstance(config, Config) else "auto"


async def serve_forever(bound: Mapping[str, BoundApp], *, log_level: str = "warning",
                        on_ready: Callable[[], None] | None = None) -> None:
    """Serve every app until SIGINT or SIGTERM. ``on_ready()`` is called once every socket
    listens, before any request is served (a connection made then waits for its server), so
    what it prints comes before any line a request logs. On a signal the first app stops
    first, then the others: the first (the demo's gateway) calls the others (its emulators),
    which must not go before it."""
    servers = _servers(bound, log_level)
    freeze_startup_heap()
    loop = asyncio.get_running_loop()
    tasks = [asyncio.ensure_future(server.serve(sockets=[b.sock])) for server, b in servers]

    def stop() -> None:
        servers[0][0].should_exit = True

    def stop_the_rest(_: object) -> None:
        for server, _bound in servers[1:]:
            server.should_exit = True

    tasks[0].add_done_callback(stop_the_rest)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    if on_ready is not None:
        on_ready()
    await asyncio.gather(*tasks)


class ServerThread:
    """Serve apps on real sockets from a background thread (tests, benchmarks)."""

    def __init__(
        self, apps: Mapping[str, ASGIApp], *, host: str = "127.0.0.1", log_level: str = "warning"
    ) -> None:
        self.bound = {name: BoundApp(app, bind(host, 0)) for name, app in apps.items()}
        self.urls = {name: b.url for name, b in self.bound.items()}
        self._servers = _servers(self.bound, log_level)
        self._thread = threading.Thread(target=self._run, name="server-thread", daemon=True)
        self._failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await asyncio.gather(*(s.serve(sockets=[b.sock]) for s, b in self._servers))

        try:
            uvloop.run(main())
        except BaseException as exc:  # reported by start()
            self._failed = exc

    def start(self) -> ServerThread:
        self._thread.start()
        while not all(server.started for server, _ in self._servers):
            if self._failed is not None or not self._thread.is_alive():
                raise RuntimeError("a server failed to start") from self._failed
            threading.Event().wait(0.01)
        return self

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coroutine`` on the servers' event loop, where their apps' state lives, and
        wait for its result (tests: act on an app as its requests would)."""
        assert self._loop is not None, "not started"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        for server, _ in self._servers:
            server.should_exit = True
        self._thread.join(timeout=10)
        for b in self.bound.values():
            b.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
