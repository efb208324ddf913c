"""The whole-response cache end to end, over real sockets (gateway/caches/responses.py).

Upstream calls are read from the emulators' request logs; executions from the compiled
executor's counter (``app.state.plans.runs``): a hit runs neither.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.clock import SYSTEM_CLOCK
from gateway.config import CacheSettings, Config, ResponseCacheSettings
from gateway.demo import demo_config
from gateway.edge.app import GatewayApp, create_app
from gateway.edge.serving import ServerThread
from gateway.emulators.common import Fault
from tests.clock import ManualClock
from tests.conftest import RunningEmulator
from tests.helpers import post
from tests.resilience.conftest import gateway_processes, new_namespace

Emulators = dict[str, RunningEmulator]

AXIM = """query Axim($n: Int!) { productGroups(first: $n, filter: {sources: ["axim"]}) {
  nodes { name products(first: 2) { nodes { sku } } } } }"""
JOPTIC = '{ productGroups(first: 3, filter: {sources: ["joptic"]}) { nodes { name } } }'
CACHED = {"cache_ttl_seconds": 30, "group_cache_ttl_seconds": 30, "stale_grace_seconds": 600}


def config_for(emulators: Emulators, **response_cache: Any) -> Config:
    config = demo_config({kind: e.url for kind, e in emulators.items()}, defaults=CACHED)
    return config.model_copy(update={
        "cache": CacheSettings(namespace=new_namespace()),
        "response_cache": ResponseCacheSettings(**response_cache)})


class Gateway:
    def __init__(self, app: GatewayApp, url: str) -> None:
        self.app, self.url = app, url
        self.client = httpx.Client(base_url=url, timeout=30)

    def post(self, query: str, variables: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        return post(self.client, query, variables, headers)

    def get(self, query: str, variables: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> httpx.Response:
        params = {"query": query}
        if variables is not None:
            params["variables"] = json.dumps(variables)
        return self.client.get("/graphql", params=params, headers=headers)

    @property
    def executions(self) -> int:
        runs = self.app.state.plans.runs
        return int(runs["compiled"] + runs["standard"])


@contextmanager
def gateway(config: Config, clock: ManualClock | None = None) -> Iterator[Gateway]:
    app = create_app(config, clock=clock.clock if clock else SYSTEM_CLOCK)
    with ServerThread({"gw": app}) as servers:
        served = Gateway(app, servers.urls["gw"])
        try:
            yield served
        finally:
            served.client.close()


@pytest.fixture
def emulators(emulator_servers: Emulators, emulator: Any) -> Emulators:
    return emulator_servers


def upstream_calls(emulators: Emulators) -> int:
    return sum(len(e.log) for e in emulators.values())


def clear(emulators: Emulators) -> None:
    for running in emulators.values():
        running.log.clear()


def test_a_repeated_query_makes_no_upstream_call_and_executes_nothing(
        emulators: Emulators) -> None:
    with gateway(config_for(emulators)) as gw:
        first = gw.post(AXIM, {"n": 3})
        assert first.headers["x-response-cache"] == "miss"
        clear(emulators)
        executions = gw.executions

        second = gw.post(AXIM, {"n": 3})
        assert second.headers["x-response-cache"] == "hit"
        assert second.content == first.content
        assert upstream_calls(emulators) == 0
        assert gw.executions == executions
        assert int(second.headers["age"]) >= 0


@pytest.mark.parametrize(("variables", "headers"), [
    ({"n": 4}, None),  # other variables
    ({"n": 3}, {"accept-language": "en"}),  # another language
], ids=["variables", "language"])
def test_other_variables_or_language_miss(emulators: Emulators, variables: dict[str, Any],
                                          headers: dict[str, str] | None) -> None:
    with gateway(config_for(emulators)) as gw:
        gw.post(AXIM, {"n": 3})
        executions = gw.executions
        again = gw.post(AXIM, variables, headers)
        assert again.headers["x-response-cache"] == "miss"
        assert gw.executions == executions + 1


def test_an_answer_with_errors_is_not_kept(emulators: Emulators) -> None:
    query = "{ productGroups(first: 3) { nodes { name } } }"  # every source with groups
    with gateway(config_for(emulators)) as gw:
        emulators["joptic"].faults.set(Fault(status=503))
        failed = gw.post(query)
        assert failed.json()["errors"]
        assert "x-response-cache" not in failed.headers
        emulators["joptic"].faults.clear()
        executions = gw.executions
        assert gw.post(query).headers["x-response-cache"] == "miss"
        assert gw.executions == executions + 1


def test_stale_data_is_not_kept(emulators: Emulators) -> None:
    clock = ManualClock()
    with gateway(config_for(emulators), clock) as gw:
        assert gw.post(JOPTIC).headers["x-response-cache"] == "miss"
        clock.advance(45)  # past the upstream TTL (30 s) and the response's max-age
        emulators["joptic"].faults.set(Fault(status=503))
        stale = gw.post(JOPTIC)
        assert stale.json()["extensions"]["stale"][0]["source"] == "joptic"
        assert "x-response-cache" not in stale.headers
        executions = gw.executions
        gw.post(JOPTIC)
        assert gw.executions == executions + 1  # the stale answer was not kept


def test_a_response_never_outlives_its_upstream_answers(emulators: Emulators) -> None:
    clock = ManualClock()
    with gateway(config_for(emulators, max_ttl_seconds=3600), clock) as gw:
        gw.post(JOPTIC)
        clock.advance(20)
        hit = gw.post(JOPTIC)
        assert hit.headers["x-response-cache"] == "hit"
        clear(emulators)
        clock.advance(11)  # 31 s: the Joptic answer it came from is no longer fresh
        again = gw.post(JOPTIC)
        assert again.headers["x-response-cache"] == "miss"
        assert len(emulators["joptic"].log) >= 1  # asked the upstream again


def test_a_response_built_on_an_aging_upstream_entry_is_kept_only_for_what_is_left(
        emulators: Emulators) -> None:
    clock = ManualClock()
    with gateway(config_for(emulators, max_ttl_seconds=3600), clock) as gw:
        gw.post(JOPTIC)  # the Joptic page is stored now, fresh for 30 s
        clock.advance(25)
        clear(emulators)
        aliased = gw.get(JOPTIC.replace("{ productGroups", "{ groups: productGroups"))
        assert aliased.headers["x-response-cache"] == "miss"  # another document…
        assert upstream_calls(emulators) == 0  # …built from the 25-second-old Joptic entry
        assert aliased.headers["cache-control"] == "private, max-age=5"


def test_get_answers_carry_an_etag_and_a_matching_if_none_match_is_304(
        emulators: Emulators) -> None:
    with gateway(config_for(emulators)) as gw:
        first = gw.get(JOPTIC)
        etag = first.headers["etag"]
        assert first.headers["cache-control"].startswith("private, max-age=")
        not_modified = gw.get(JOPTIC, headers={"if-none-match": etag})
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == etag
        changed = gw.get(JOPTIC, headers={"if-none-match": '"something-else"'})
        assert changed.status_code == 200 and changed.content == first.content


def test_public_cache_control_when_configured(emulators: Emulators) -> None:
    with gateway(config_for(emulators, public=True)) as gw:
        assert gw.get(JOPTIC).headers["cache-control"].startswith("public, max-age=")


def test_an_uncacheable_get_answer_says_no_store(emulators: Emulators) -> None:
    with gateway(config_for(emulators)) as gw:
        emulators["joptic"].faults.set(Fault(status=503))
        assert gw.get(JOPTIC).headers["cache-control"] == "no-store"


def test_excluded_operations_and_a_disabled_cache_always_execute(emulators: Emulators) -> None:
    with gateway(config_for(emulators, exclude_operations=("Axim",))) as gw:
        gw.post(AXIM, {"n": 3})
        executions = gw.executions
        assert "x-response-cache" not in gw.post(AXIM, {"n": 3}).headers
        assert gw.executions == executions + 1
    with gateway(config_for(emulators, enabled=False)) as gw:
        gw.post(JOPTIC)
        executions = gw.executions
        gw.post(JOPTIC)
        assert gw.executions == executions + 1


def test_two_gateway_processes_on_one_redis_share_hits(
        emulator_servers: Emulators, redis_url: str, tmp_path: Path) -> None:
    shared = new_namespace()
    with gateway_processes(emulator_servers, tmp_path, redis_url, [shared, shared],
                           response_cache=True) as (a, b):
        first = post(a.url, JOPTIC)
        assert first.headers["x-response-cache"] == "miss"
        clear(emulator_servers)
        from_b = post(b.url, JOPTIC)
        assert from_b.headers["x-response-cache"] == "hit"
        assert from_b.content == first.content
        assert upstream_calls(emulator_servers) == 0

