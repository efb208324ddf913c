"""``serve_forever``, which serves the demo's gateway and emulators in one process: its ready
callback comes before any request is served, and on a signal the first app (the gateway)
stops before the others (the emulators it calls)."""

from __future__ import annotations

import signal
import sys

from tests.processes import Process

# Two apps whose start-up and shut-down take time and say when they happen.
SCRIPT = """
import asyncio, contextlib, uvloop
from starlette.applications import Starlette
from gateway.edge.serving import BoundApp, bind, serve_forever

def app(name):
    @contextlib.asynccontextmanager
    async def lifespan(_):
        await asyncio.sleep(0.3)
        print(f"{name} started", flush=True)
        yield
        print(f"{name} stopping", flush=True)
        await asyncio.sleep(0.3)
        print(f"{name} stopped", flush=True)
    return BoundApp(Starlette(lifespan=lifespan), bind("127.0.0.1", 0))

apps = {"gateway": app("gateway"), "emulator": app("emulator")}
uvloop.run(serve_forever(apps, on_ready=lambda: print("ready", flush=True)))
print("exited", flush=True)
"""


def test_ready_comes_first_and_the_gateway_stops_before_its_emulators() -> None:
    with Process([sys.executable, "-c", SCRIPT]) as served:
        served.wait_for("gateway started")
        served.wait_for("emulator started")
        assert served.stop(signal.SIGTERM) == 0
        lines = [line for line in served.lines if line in {
            "ready", "gateway started", "emulator started", "gateway stopping",
            "gateway stopped", "emulator stopping", "emulator stopped", "exited"}]
    assert lines[0] == "ready"  # before either app serves: nothing it prints comes after one
    stops = lines[3:]
    assert stops == ["gateway stopping", "gateway stopped", "emulator stopping",
                     "emulator stopped", "exited"], served.output
