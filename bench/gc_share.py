"""The garbage collector's share of the gateway's CPU, measured in process.

    python -m bench.gc_share --config FILE --scenarios FILE [--seconds 4] [--connections 32]

py-spy cannot see CPython 3.11's collector: a collection runs inside whatever allocation
triggered it, so its samples are charged to that Python frame (a resolver, a record builder) and
the profile by layer never shows it. Here the gateway app is built as ``gateway serve`` builds it
(the config file, then :func:`~gateway.edge.serving.freeze_startup_heap`) and driven as an ASGI
app on uvloop, without sockets on the gateway's side (its upstream calls go to the running
emulators as usual), ``--connections`` requests at a time, each with its own ``Accept-Language``
(:func:`~bench.scenarios.tagged_language`) so no cache and no de-duplication shares work. Per
scenario, after a warm-up: the process's CPU over the timed queries (``time.process_time``) and
the time spent inside collections (``gc.callbacks``' start and stop, ``time.perf_counter``: a
collection is CPU only, so wall time inside it is CPU time unless the process is preempted).
The CPU excludes what uvicorn would spend on the HTTP exchange, so the share reads a little
above what it is in a server process. One JSON object per scenario is printed, one a line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvloop
from starlette.types import ASGIApp, Message

from bench.scenarios import Scenario, body_bytes, tagged_language
from gateway.config.loading import load_config
from gateway.edge.app import create_app
from gateway.edge.serving import freeze_startup_heap

__all__ = ["GcClock", "GcShare", "main", "measure", "share_of"]

WARMUP_SECONDS = 1.0


@dataclass(frozen=True)
class GcShare:
    """One scenario's timed queries: their CPU and the collector's part of it."""

    scenario: str
    queries: int
    cpu_ms: float  # the process's CPU over the timed queries
    gc_ms: float  # inside collections over the same time
    collections: tuple[int, int, int]  # collections per generation (0, 1, 2)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GcShare:
        """Read back what :func:`main` prints (JSON has no tuples)."""
        counts = data["collections"]
        return cls(data["scenario"], data["queries"], data["cpu_ms"], data["gc_ms"],
                   (counts[0], counts[1], counts[2]))

    @property
    def share(self) -> float:
        return self.gc_ms / self.cpu_ms if self.cpu_ms else 0.0

    @property
    def cpu_ms_per_query(self) -> float:
        return self.cpu_ms / self.queries if self.queries else 0.0

    @property
    def gc_ms_per_query(self) -> float:
        return self.gc_ms / self.queries if self.queries else 0.0


class GcClock:
    """Time inside collections and their count per generation, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.counts = [0, 0, 0]
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif phase == "stop" and self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self.counts[info["generation"]] += 1
            self._started = None

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self)


# -- the app as an ASGI server would drive it ----------------------------------------------------


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """The app started and, at the end, stopped, as uvicorn does (the ASGI lifespan protocol)."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def send(message: Message) -> None:
        await outbox.put(message)

    task = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                      "state": {}}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the gateway did not start: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def request(app: ASGIApp, body: bytes, language: str) -> bytes:
    """One POST /graphql through the app; its body (HTTP 200 and no errors checked)."""
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()),
               (b"accept-language", language.encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/graphql", "raw_path": b"/graphql",
             "root_path": "", "query_string": b"", "headers": headers,
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {}}
    answered = asyncio.Event()
    read = [False]
    status = [0]
    chunks: list[bytes] = []

    async def receive() -> Message:
        if not read[0]:
            read[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()  # the client stays until its answer is sent
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    finally:
        answered.set()
    answer = b"".join(chunks)
    if status[0] != 200 or b'"errors"' in answer:
        raise RuntimeError(f"{status[0]} {answer[:300]!r}")
    return answer


# -- the measurement -----------------------------------------------------------------------------


TAGS = itertools.count()


async def load(app: ASGIApp, scenario: Scenario, seconds: float, connections: int) -> int:
    """Queries of ``scenario`` for ``seconds``, ``connections`` at a time; how many were made."""
    body = body_bytes(scenario)
    deadline = time.monotonic() + seconds
    made = [0]

    async def client() -> None:
        while time.monotonic() < deadline:
            await request(app, body, tagged_language(f"gc{scenario.name}{next(TAGS)}"))
            made[0] += 1

    await asyncio.gather(*(client() for _ in range(connections)))
    return made[0]


def share_of(scenario: str, queries: int, cpu_seconds: float, clock: GcClock) -> GcShare:
    return GcShare(scenario, queries, 1000 * cpu_seconds, 1000 * clock.seconds,
                   (clock.counts[0], clock.counts[1], clock.counts[2]))


async def measure(app: ASGIApp, scenarios: list[Scenario], seconds: float, connections: int,
                  warmup: float = WARMUP_SECONDS) -> list[GcShare]:
    """Per scenario: warm up, then time ``seconds`` of queries (see the module's docstring)."""
    shares: list[GcShare] = []
    async with lifespan(app):
        for scenario in scenarios:
            await load(app, scenario, warmup, connections)
            with GcClock() as clock:
                before = time.process_time()
                queries = await load(app, scenario, seconds, connections)
                cpu = time.process_time() - before
            shares.append(share_of(scenario.name, queries, cpu, clock))
    return shares


def read_scenarios(path: Path) -> list[Scenario]:
    """The scenarios as ``bench.run`` writes them (with their variables: the nodes' ids)."""
    return [Scenario(s["name"], s["title"], s["query"], s.get("variables"))
            for s in json.loads(path.read_text())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gc_share", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the gateway's TOML config")
    parser.add_argument("--scenarios", required=True,
                        help="JSON list of {name, title, query, variables}")
    parser.add_argument("--seconds", type=float, default=4, help="timed seconds per scenario")
    parser.add_argument("--warmup", type=float, default=WARMUP_SECONDS,
                        help="seconds per scenario before timing")
    parser.add_argument("--connections", type=int, default=32, help="requests at a time")
    args = parser.parse_args(argv)
    scenarios = read_scenarios(Path(args.scenarios))
    app = create_app(load_config(args.config))
    freeze_startup_heap()
    shares = uvloop.run(measure(app, scenarios, args.seconds, args.connections, args.warmup))
    for share in shares:
        print(json.dumps(asdict(share)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
