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
import signal
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType

import uvicorn
import uvloop
from starlette.types import ASGIApp

__all__ = ["BoundApp", "ServerThread", "bind", "serve_forever"]


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


# Longer than clients keep idle connections (see ServerSettings.keep_alive_seconds).
KEEP_ALIVE = 75


class _Server(uvicorn.Server):
    # Several servers share one loop: signals are handled once, by serve_forever.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _servers(bound: Mapping[str, BoundApp], log_level: str) -> list[tuple[_Server, BoundApp]]:
    return [
        (_Server(uvicorn.Config(b.app, lifespan="auto", log_level=log_level, access_log=False,
                                timeout_graceful_shutdown=2, timeout_keep_alive=KEEP_ALIVE)), b)
        for b in bound.values()
    ]


async def serve_forever(bound: Mapping[str, BoundApp], *, log_level: str = "warning") -> None:
    """Serve every app until SIGINT or SIGTERM."""
    servers = _servers(bound, log_level)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server, _ in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    await asyncio.gather(*(server.serve(sockets=[b.sock]) for server, b in servers))


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

    def _run(self) -> None:
        async def main() -> None:
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
