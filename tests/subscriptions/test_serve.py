"""``serve`` as an operator runs it: SIGTERM ends the subscriptions as the drain starts, not
once it is over, so clients reconnect to another replica while this one drains."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from httpx_sse import ServerSentEvent

from gateway.emulators import DEMO_TOKENS
from tests.conftest import RunningEmulator
from tests.helpers import error_codes
from tests.processes import Process
from tests.subscriptions.conftest import GROUP_CHANGES, sse

DRAIN_SECONDS = 30  # far longer than the test may take: the streams must end at its start


def test_sigterm_ends_every_subscription_as_the_drain_starts(
        tmp_path: Path, emulator_servers: dict[str, RunningEmulator]) -> None:
    sources = "".join(
        f'[[sources]]\nname = "{kind}"\nkind = "{kind}"\nbase_url = "{e.url}"\n'
        f'token = "{DEMO_TOKENS[kind]}"\n' for kind, e in emulator_servers.items())
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nport = 0\ncursor_secret = "s3cret-cursor-key-0123"\n'
                      f"drain_seconds = {DRAIN_SECONDS}\n"
                      "[defaults]\npoll_interval_seconds = 3600\n" + sources)
    with Process([sys.executable, "-m", "gateway", "serve", "--config", str(config)]) as serve:
        url = serve.wait_for(r"Uvicorn running on (http://[\d.:]+)").group(1)
        received: list[ServerSentEvent] = []
        opened = threading.Event()

        def listen() -> None:
            with sse(f"{url}/graphql", GROUP_CHANGES) as events:
                opened.set()
                received.extend(events)

        listener = threading.Thread(target=listen)
        listener.start()
        assert opened.wait(10)
        signalled = time.monotonic()
        os.kill(serve.pid, signal.SIGTERM)
        listener.join(10)
        assert not listener.is_alive(), "the stream outlived the drain's start"
        assert time.monotonic() - signalled < DRAIN_SECONDS / 3
        serve.stop(signal.SIGTERM, timeout=30)  # a second SIGTERM ends the drain
    *_, ended, complete = received
    assert error_codes(json.loads(ended.data)["errors"]) == ["SHUTTING_DOWN"]
    assert complete.event == "complete"
