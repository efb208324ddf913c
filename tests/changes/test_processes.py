"""The change feed across gateway processes, as operators run them (``serve`` subprocesses over
emulators of this module's own; subscribers read Server-Sent Events with httpx-sse):

* two processes on one Redis: one polls, both deliver each event once; when the polling one
  dies the other takes over within the lease time, losing and repeating nothing;
* a restart resumes from the stored watermark: what changed while it was down arrives once.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS, create_emulator
from gateway.emulators.changes import EmulatorData
from tests.helpers import eventually
from tests.observed import scrape
from tests.processes import Process

SUBSCRIPTION = """subscription { productGroupChanged(filter: {sources: ["joptic"]}) {
  change eventId node { id name } } }"""


@pytest.fixture(scope="module")
def joptic() -> Iterator[tuple[str, EmulatorData]]:
    app = create_emulator("joptic")
    with ServerThread({"joptic": app}) as servers:
        yield servers.urls["joptic"], app.state.data


def write_config(path: Path, url: str, *, interval: float, cache: str = "",
                 changes: str = "") -> Path:
    path.write_text(
        '[server]\nport = 0\ncursor_secret = "s3cret-cursor-key-0123"\ndrain_seconds = 0\n'
        f"grace_seconds = 1\n{cache}\n[changes]\n{changes}\n"
        f"[defaults]\npoll_interval_seconds = {interval}\nfull_poll_interval_seconds = {interval}\n"
        f'[[sources]]\nname = "joptic"\nkind = "joptic"\nbase_url = "{url}"\n'
        f'token = "{DEMO_TOKENS["joptic"]}"\n')
    return path


class Subscriber:
    """An SSE subscriber in a thread: every event it receives, in order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[dict[str, Any]] = []
        self.ended = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._connected = threading.Event()

    def start(self) -> Subscriber:
        self._thread.start()
        assert self._connected.wait(10), "the subscription stream did not open"
        return self

    def _read(self) -> None:
        try:
            with connect_sse(self._client, "POST", f"{self.url}/graphql",
                             json={"query": SUBSCRIPTION}) as source:
                self._connected.set()
                for sse in source.iter_sse():
                    if sse.event == "next":
                        payload = json.loads(sse.data)
                        self.events.append(payload.get("data", {}).get("productGroupChanged")
                                           or payload)
        except httpx.HTTPError:
            pass
        finally:
            self._connected.set()
            self.ended.set()

    def changes(self) -> list[tuple[str, str]]:
        return [(e["change"], e["node"]["name"]) for e in self.events if "change" in e]

    def close(self) -> None:
        self._client.close()


def polls(url: str) -> float:
    try:
        return scrape(url).total("gateway_change_polls_total", source="joptic", outcome="ok")
    except httpx.HTTPError:
        return 0.0


def serve(config: Path) -> tuple[Process, str]:
    process = Process([sys.executable, "-m", "gateway", "serve", "--config", str(config)]).start()
    url = process.wait_for(r"Uvicorn running on (http://[\d.:]+)").group(1)
    return process, url


@pytest.mark.slow
def test_two_processes_on_one_redis_share_the_polling_and_lose_nothing_on_takeover(
        joptic: tuple[str, EmulatorData], redis_url: str, tmp_path: Path) -> None:
    upstream, data = joptic
    namespace = f"two-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path / "gateway.toml", upstream, interval=0.5,
                          cache=f'[cache]\nurl = "{redis_url}"\nnamespace = "{namespace}"\n',
                          changes="lease_seconds = 2\n")
    first, first_url = serve(config)
    second, second_url = serve(config)
    processes = {first_url: first, second_url: second}
    subscribers = {url: Subscriber(url).start() for url in processes}
    try:
        eventually(lambda: polls(first_url) + polls(second_url) >= 2)  # a baseline and more
        polling = [url for url in processes if polls(url) > 0]
        assert len(polling) == 1, "exactly one process polls"
        other = second_url if polling[0] == first_url else first_url

        group = data.create_group(name="Seen by both processes")
        for subscriber in subscribers.values():
            eventually(lambda s=subscriber: len(s.changes()) >= 1)  # type: ignore[misc]
        ids = {url: [e["eventId"] for e in s.events] for url, s in subscribers.items()}
        assert ids[first_url] == ids[second_url] and len(ids[first_url]) == 1

        processes[polling[0]].stop(signal.SIGKILL)  # no goodbye: its lease must expire
        data.update_group(group, name="Renamed while the poller was dead")
        survivor = subscribers[other]
        eventually(lambda: len(survivor.changes()) >= 2, timeout=20)
        time.sleep(1.5)  # a few more polls: nothing more may come
        assert survivor.changes() == [("CREATED", "Seen by both processes"),
                                      ("UPDATED", "Renamed while the poller was dead")]
        assert polls(other) > 0
    finally:
        for subscriber in subscribers.values():
            subscriber.close()
        for process in processes.values():
            process.stop()


@pytest.mark.slow
def test_a_restart_announces_once_what_changed_while_the_gateway_was_down(
        joptic: tuple[str, EmulatorData], tmp_path: Path) -> None:
    upstream, data = joptic
    config = write_config(tmp_path / "gateway.toml", upstream, interval=2,
                          changes=f'state_dir = "{tmp_path / "state"}"\n')
    process, url = serve(config)
    try:
        eventually(lambda: polls(url) >= 1)  # the baseline is stored
    finally:
        process.stop()
    victim = data.group_ids()[0]
    data.delete_group(victim)
    data.create_group(name="Made while the gateway was down")

    process, url = serve(config)
    subscriber = Subscriber(url).start()  # within the first interval
    try:
        eventually(lambda: len(subscriber.changes()) >= 2)
        eventually(lambda: polls(url) >= 3)
        changes = subscriber.changes()
        assert sorted(change for change, _ in changes) == ["CREATED", "DELETED"]
        assert ("CREATED", "Made while the gateway was down") in changes
    finally:
        subscriber.close()
        process.stop()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def stalled_subscriber(url: str) -> socket.socket:
    """An SSE subscription whose client never reads (a small receive window: the gateway's
    writes back up after kilobytes, not megabytes of kernel buffers)."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"query": SUBSCRIPTION}).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nAccept: text/event-stream\r\n"
                 b"Content-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    return sock


def subscriptions(url: str) -> float:
    return scrape(url).total("gateway_subscriptions", topic="groups")


@pytest.mark.slow
def test_a_stalled_subscriber_is_dropped_and_memory_stays_bounded(
        joptic: tuple[str, EmulatorData], tmp_path: Path) -> None:
    upstream, data = joptic
    config = write_config(tmp_path / "gateway.toml", upstream, interval=0.2,
                          changes="queue_size = 100\n")  # two polls' changes
    process, url = serve(config)
    reader = Subscriber(url).start()
    stalled = stalled_subscriber(url)
    try:
        eventually(lambda: subscriptions(url) == 2)
        groups = data.group_ids()[:50]
        samples: list[int] = []
        started = time.monotonic()
        dropped_after: float | None = None
        round_ = 0
        while dropped_after is None or time.monotonic() - dropped_after < 5:
            assert time.monotonic() - started < 90, "the stalled subscriber is still served"
            round_ += 1
            for group in groups:  # steady changes: 50 renames a poll
                data.update_group(group, name=f"Churned {round_}")
            samples.append(rss_bytes(process.pid))
            if dropped_after is None and subscriptions(url) == 1:
                dropped_after = time.monotonic()
            time.sleep(0.2)
        assert len(reader.changes()) > 500  # the reader kept up meanwhile
        assert reader.events[-1]["node"]["name"].startswith("Churned")
        settled = samples[len(samples) // 3]  # after start-up and the first events
        assert max(samples[len(samples) // 3:]) - settled < 32 * 2**20, samples
    finally:
        stalled.close()
        reader.close()
        process.stop()
