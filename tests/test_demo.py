"""The demo: ``--churn``'s changes (each line says what changed, and the emulator's own API shows
it), a busy port told in one line, and a quiet stop. (Its banner before any request's line:
tests/edge/test_serving.py.)"""

from __future__ import annotations

import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.demo import Churn
from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS, KINDS, create_emulator, emulator_data
from tests.conftest import RunningEmulator
from tests.emulators.views import Key, names
from tests.processes import Process

LINE = re.compile(r'^churn: (?P<kind>\w+) (?P<action>created|renamed|deleted) '
                  r'(?P<entity>group|product) (?P<id>\S+)(?: to)?(?: "(?P<name>[^"]+)")?'
                  r'(?: in group (?P<group>\S+))?(?P<state0> \(state 0\))?$')


@pytest.fixture(scope="module")
def own_emulators() -> Iterator[dict[str, RunningEmulator]]:
    """Emulators of this module's own: the churn changes their data."""
    apps = {kind: create_emulator(kind) for kind in KINDS}
    with ServerThread(apps) as servers:
        yield {kind: RunningEmulator(kind, apps[kind], servers.urls[kind], DEMO_TOKENS[kind])
               for kind in KINDS}


def expected(before: dict[Key, tuple[Any, Any]], line: re.Match[str]
             ) -> dict[Key, tuple[Any, Any]]:
    """What the emulator should list after the change the line tells."""
    after = dict(before)
    key = (line["entity"], line["id"])
    if line["action"] == "created":
        assert key not in before
        # CareCloud: state 1; an Axim product: the group it joined; else nothing.
        after[key] = (line["name"], 1 if line["kind"] == "carecloud" else line["group"])
    elif line["action"] == "renamed":
        after[key] = (line["name"], before[key][1])
    elif line["kind"] == "carecloud":
        assert line["state0"] and before[key][1] == 1
        after[key] = (before[key][0], 0)
    else:
        del after[key]
        if line["entity"] == "group":  # Axim: the group's products go with it
            after = {k: v for k, v in after.items() if v[1] != line["id"]}
    return after


def test_each_churn_line_is_a_change_the_upstream_api_shows(
        own_emulators: dict[str, RunningEmulator]) -> None:
    churn = Churn({kind: emulator_data(e.app) for kind, e in own_emulators.items()}, 1.0,
                  rng=random.Random(33))
    clients = {kind: e.client() for kind, e in own_emulators.items()}
    seen = {kind: names(kind, clients[kind]) for kind in KINDS}
    done = set()
    try:
        for _ in range(25):
            line = LINE.match(churn.change())
            assert line is not None
            kind = line["kind"]
            now = names(kind, clients[kind])
            assert now == expected(seen[kind], line), line.group(0)
            seen[kind] = now
            done.add((kind, line["action"], line["entity"]))
    finally:
        for client in clients.values():
            client.close()
    # The seeded generator went through every change churn makes, of each kind.
    entities = {"carecloud": ["group"], "joptic": ["group"], "axim": ["group", "product"],
                "comestri": ["product"]}
    assert done == {(kind, action, entity) for kind in KINDS for entity in entities[kind]
                    for action in ("created", "renamed", "deleted")}


def test_a_refused_change_is_told_not_raised() -> None:
    data = emulator_data(create_emulator("axim"))
    for group_id in data.group_ids():
        data.delete_group(group_id)
    lines = [Churn({"axim": data}, 1.0, rng=random.Random(seed)).change() for seed in range(20)]
    assert any(line.startswith("churn: axim could not create a product: no axim group")
               for line in lines), lines
    assert all(LINE.match(line) or " could not " in line for line in lines), lines


def test_the_churn_thread_changes_every_interval_and_stops() -> None:
    data = emulator_data(create_emulator("joptic"))
    said: list[str] = []
    churn = Churn({"joptic": data}, 0.2, rng=random.Random(1), say=said.append)
    churn.start()
    try:
        deadline = time.monotonic() + 30
        while len(said) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        churn.stop()
    assert len(said) >= 3 and all(LINE.match(line) for line in said), said
    assert "demo-churn" not in {thread.name for thread in threading.enumerate()}


# -- the demo as a newcomer runs it ---------------------------------------------------------------



def test_the_demo_stops_on_sigterm_without_a_warning() -> None:
    """Stopped while its change feed's polls are in flight (each upstream answer takes 0.4 s:
    the polls every 2 s overlap the stop), the gateway goes before its emulators: no poll
    fails for the want of an upstream, and nothing but the request's line follows the banner."""
    with Process([sys.executable, "-m", "gateway", "demo", "--port", "0", "--latency-ms",
                  "400"]) as demo:
        url = demo.wait_for(r"^  GraphQL +(http://\S+/graphql)$").group(1)
        assert httpx.post(url, json={"query": "{ productGroups(first: 3) { nodes { name } } }"},
                          timeout=30).status_code == 200
        demo.wait_for(r'"event": ?"graphql request"')
        time.sleep(2.2)  # past the first polls' start: they are waiting for their answers
        demo.stop(signal.SIGTERM)
        output = demo.output
    after_banner = output.split("One line per GraphQL request follows.")[1].splitlines()
    assert all("graphql request" in line for line in after_banner if line.strip()), output


def test_a_busy_port_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "gateway", "demo", "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert f"cannot listen on 127.0.0.1:{port}" in line and f"PORT={port + 1}" in line
