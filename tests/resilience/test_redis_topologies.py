"""The shared state of several gateway processes in Redis beyond one node, against real servers
started from Debian's packages:

* a three-master Redis Cluster (``redis-cli --cluster create``): two ``serve`` processes share
  cached answers, APQ documents, rate limits and the change feed (one poller, every event once
  to both processes' subscribers);
* a primary and its replica under three sentinels: the primary killed while a subscriber
  listens and a client sends queries; after the promotion the change events resume, none
  repeated and none skipped, and no query fails (the longest answer is reported).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.cluster import RedisCluster

from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS, create_emulator
from gateway.emulators.changes import EmulatorData
from gateway.emulators.common import RecordedRequest, RequestLog
from tests.helpers import eventually, free_port, wait_healthy
from tests.leaks import CONFIGURED
from tests.processes import Process
from tests.redis_server import running_cluster, running_sentinels
from tests.sse_subscriber import Subscriber

pytestmark = pytest.mark.slow  # Redis servers and gateway processes of their own

SUBSCRIPTION = """subscription { productGroupChanged(filter: {sources: ["joptic"]}) {
  change eventId node { name } } }"""
GROUPS = "query Groups { productGroups(first: 3) { totalCount nodes { name } } }"
LIMIT = 6  # requests a minute of the API client "shop"


@pytest.fixture
def joptic() -> Iterator[tuple[str, EmulatorData, RequestLog]]:
    app = create_emulator("joptic")
    with ServerThread({"joptic": app}) as servers:
        yield servers.urls["joptic"], app.state.data, app.state.log


def write_config(path: Path, upstream: str, cache: str, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()
    path.write_text(
        '[server]\ncursor_secret = "s3cret-cursor-key-0123"\ndrain_seconds = 0\n'
        f'[cache]\nurl = "redis://"\nnamespace = "t{uuid.uuid4().hex[:8]}"\n{cache}\n'
        "[changes]\nlease_seconds = 2\n"
        f'[auth]\napi_keys = [{{client = "shop", sha256 = "{digest}"}}]\n'
        f"[rate_limits.clients.shop]\nrequests_per_minute = {LIMIT}\n"
        "[defaults]\npoll_interval_seconds = 0.3\nfull_poll_interval_seconds = 0.3\n"
        f'[[sources]]\nname = "joptic"\nkind = "joptic"\nbase_url = "{upstream}"\n'
        f'token = "{DEMO_TOKENS["joptic"]}"\n')
    return path


def serve(config: Path) -> tuple[Process, str]:
    process = Process([sys.executable, "-m", "gateway", "serve", "--config", str(config),
                       "--port", str(free_port())]).start()
    url = process.wait_for(r"Uvicorn running on (http://[\d.:]+)").group(1)
    wait_healthy(url)
    return process, url


def queried(log: RequestLog) -> list[RecordedRequest]:
    """The source's requests made for queries (not the change feed's polls)."""
    return [r for r in log.records
            if not r.headers.get("x-request-id", "").startswith("changes:")]


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None
         ) -> httpx.Response:
    return httpx.post(f"{url}/graphql", json=body, headers=headers or {}, timeout=30)


def test_two_gateway_processes_share_everything_through_a_redis_cluster(
        joptic: tuple[str, EmulatorData, RequestLog], tmp_path: Path) -> None:
    upstream, data, log = joptic
    key = "ak_" + secrets.token_urlsafe(24)
    CONFIGURED.add(key)
    with running_cluster(tmp_path / "cluster") as nodes:
        cache = f'redis_mode = "cluster"\ncluster_nodes = {json.dumps(nodes)}'
        config = write_config(tmp_path / "gateway.toml", upstream, cache, key)
        (a, a_url), (b, b_url) = serve(config), serve(config)
        subscribers: list[Subscriber] = []
        try:
            # Cached answers: what A fetched, B answers without asking the source again.
            first = post(a_url, {"query": GROUPS}).json()
            asked = len(queried(log))
            assert asked > 0 and post(b_url, {"query": GROUPS}).json() == first
            assert len(queried(log)) == asked

            # APQ: registered through A, run through B by its hash alone.
            digest = hashlib.sha256(GROUPS.encode()).hexdigest()
            apq = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
            assert "data" in post(a_url, {"query": GROUPS, "extensions": apq}).json()
            assert post(b_url, {"extensions": apq}).json() == first

            # Rate limits: one window for the client, whichever process it reaches.
            shop = {"X-API-Key": key}
            answers = [post((a_url, b_url)[n % 2], {"query": "{ sources { id } }"}, shop)
                       for n in range(LIMIT + 1)]
            assert [r.status_code for r in answers] == [200] * LIMIT + [429]
            assert answers[-1].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"

            # The change feed: one poller commits each change, both processes deliver it.
            subscribers = [Subscriber(u, SUBSCRIPTION, "productGroupChanged").start()
                           for u in (a_url, b_url)]
            eventually(lambda: all(s.streams for s in subscribers))
            time.sleep(1.0)  # the feed's baseline poll
            data.create_group(name="Made while two gateways watched")
            eventually(lambda: all(s.events for s in subscribers))
            time.sleep(1.5)  # nothing more may come
        finally:
            for subscriber in subscribers:
                subscriber.close()
            a.stop()
            b.stop()
        host, port = nodes[0].split(":")
        client = RedisCluster(host=host, port=int(port))
        namespace = config.read_text().split('namespace = "')[1].split('"')[0]
        stream: Any = client.xrange(f"{{{namespace}:changes}}:events")
        client.close()
    expected = [("CREATED", "Made while two gateways watched")]
    assert [s.names() for s in subscribers] == [expected, expected]
    assert subscribers[0].events[0]["eventId"] == subscribers[1].events[0]["eventId"]
    assert len(stream) == 1  # one commit: one poller


def test_a_sentinel_failover_loses_no_event_and_fails_no_query(
        joptic: tuple[str, EmulatorData, RequestLog], tmp_path: Path) -> None:
    upstream, data, _ = joptic
    with running_sentinels(tmp_path / "sentinel") as sentinels:
        cache = (f'redis_mode = "sentinel"\nsentinels = {json.dumps(sentinels.addresses)}\n'
                 f'sentinel_service = "{sentinels.service}"')
        config = write_config(tmp_path / "gateway.toml", upstream, cache, "unused-key")
        gateway, url = serve(config)
        load = QueryLoad(url)
        subscriber = Subscriber(url, SUBSCRIPTION, "productGroupChanged").start()
        try:
            eventually(lambda: subscriber.streams > 0)
            time.sleep(1.0)  # the feed's baseline poll
            group = data.create_group(name="Before the failover")
            eventually(lambda: len(subscriber.events) == 1)
            data.update_group(group, name="Committed before the kill")
            eventually(lambda: len(subscriber.events) == 2)

            killed_at = time.monotonic()
            sentinels.primary.kill()
            data.update_group(group, name="Changed during the failover")
            eventually(lambda: sentinels.primary_port() == sentinels.replica.port, timeout=30)
            promoted_at = time.monotonic()
            eventually(lambda: len(subscriber.events) >= 3, timeout=30)
            data.update_group(group, name="After the promotion")
            eventually(lambda: len(subscriber.events) >= 4, timeout=30)
            time.sleep(1.5)  # nothing more may come
        finally:
            subscriber.close()
            load.stop()
            gateway.stop()
    assert subscriber.names() == [
        ("CREATED", "Before the failover"), ("UPDATED", "Committed before the kill"),
        ("UPDATED", "Changed during the failover"), ("UPDATED", "After the promotion")]
    ids = [e["eventId"] for e in subscriber.events]
    assert len(set(ids)) == len(ids)
    assert load.failures == [], load.failures[:3]
    failover = promoted_at - killed_at
    slowest = max(load.durations)
    print(f"failover {failover:.2f} s; slowest query {slowest:.2f} s; "
          f"{len(load.durations)} queries")
    assert slowest < failover + 2, (slowest, failover)


class QueryLoad:
    """A client sending a query in a loop; every answer's duration, and what failed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.durations: list[float] = []
        self.failures: list[str] = []
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stopped.is_set():
                started = time.monotonic()
                try:
                    response = client.post(f"{self.url}/graphql", json={"query": GROUPS})
                    if response.status_code != 200 or "errors" in response.json():
                        self.failures.append(response.text)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.durations.append(time.monotonic() - started)
                time.sleep(0.02)

    def stop(self) -> None:
        self.stopped.set()
        self._thread.join(30)

