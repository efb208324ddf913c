"""End-to-end acceptance tests of caching and scale-out, over real sockets.

Every gateway here is built by the test itself (the shared ``gateway_server`` has caching off),
with its own cache namespace, so no test sees another's entries. The whole-response cache is off
in them: these tests are of the upstream layers (tests/resilience/test_response_cache.py has
the response cache's). Upstream call counts are read
from the emulators' request logs: what the upstreams really received.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from gateway.caches.store import MemoryBackend
from gateway.config import CacheSettings, Config, ResponseCacheSettings
from gateway.demo import demo_config
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from gateway.emulators import KINDS
from tests.conftest import RunningEmulator
from tests.helpers import post
from tests.resilience.conftest import GatewayProcess, gateway_processes, new_namespace

Emulators = dict[str, RunningEmulator]
Json = dict[str, Any]
Calls = dict[str, list[tuple[str, str]]]

# Touches every source: the group lists of CareCloud, Joptic and Axim (and every total), Comestri
# products, and Axim groups with their nested products.
ALL_SOURCES = """
{
  productGroups(first: 30) { totalCount nodes { name source { id } } }
  products(first: 5) { nodes { name } }
  axim: productGroups(first: 2, filter: {sources: ["axim"]}) {
    nodes { name products(first: 2) { totalCount nodes { name sku } } }
  }
}
"""
# Every source once more, with other arguments (so its entries are its own).
EVERY_SOURCE_AGAIN = (
    "{ productGroups(first: 7) { totalCount } products(first: 3) { nodes { name } } }"
)
JOPTIC_ONLY = '{ productGroups(first: 5, filter: {sources: ["joptic"]}) { nodes { id name } } }'
CARECLOUD_ONLY = (
    '{ productGroups(first: 5, filter: {sources: ["carecloud"]}) { nodes { id name } } }'
)
UNCACHED = {"cache_ttl_seconds": 0, "group_cache_ttl_seconds": 0}


# --- helpers ------------------------------------------------------------------------------------


def _config(emulators: Emulators, *, defaults: Mapping[str, Any] | None = None,
            cache_url: str = "memory://", namespace: str | None = None) -> Config:
    config = demo_config({kind: e.url for kind, e in emulators.items()}, defaults=defaults,
                         cache_url=cache_url)
    cache = CacheSettings(url=cache_url, namespace=namespace or new_namespace())
    return config.model_copy(update={"cache": cache, "response_cache": ResponseCacheSettings(
        enabled=False)})


@contextmanager
def _gateway(config: Config) -> Iterator[str]:
    """The gateway served from a thread; yields its base URL."""
    with ServerThread({"gw": create_app(config)}) as servers:
        yield servers.urls["gw"]


def _query(to: str | httpx.Client, query: str, headers: Mapping[str, str] | None = None
           ) -> Json:
    response = post(to, query, headers=headers)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def _clear(emulators: Emulators) -> None:
    for running in emulators.values():
        running.log.clear()


def _calls(emulators: Emulators) -> Calls:
    """The upstream requests each emulator received, as (path, query)."""
    return {kind: [(r.path, r.query) for r in e.log.records] for kind, e in emulators.items()}


def _total(calls: Calls) -> int:
    return sum(len(c) for c in calls.values())


def _no_errors(body: Json) -> Json:
    assert "errors" not in body, body.get("errors")
    data: Json = body["data"]
    return data


@pytest.fixture
def emulators(emulator_servers: Emulators,
              emulator: Callable[[str], RunningEmulator]) -> Emulators:
    """The session's emulators, with clean logs and no faults (cleared again afterwards)."""
    return emulator_servers


# --- 1. warm cache in memory ---------------------------------------------------------------------


def test_warm_memory_cache_answers_without_upstream_requests(emulators: Emulators) -> None:
    with _gateway(_config(emulators)) as gw:
        cold = _no_errors(_query(gw, ALL_SOURCES))
        cold_calls = _calls(emulators)
        assert all(cold_calls[kind] for kind in KINDS), cold_calls  # every source was asked
        _clear(emulators)

        warm = _no_errors(_query(gw, ALL_SOURCES))
        assert _calls(emulators) == {kind: [] for kind in KINDS}
        assert warm == cold
    assert cold["productGroups"]["totalCount"] > 30
    assert len(cold["products"]["nodes"]) == 5
    assert all(g["products"]["nodes"] for g in cold["axim"]["nodes"])


# --- 2. Redis shared by two processes -----------------------------------------------------------

@dataclass
class RedisGateways:
    """Three gateway processes on one Redis: ``a`` and ``b`` share a namespace, ``c`` not."""

    url: str
    shared: str
    other: str
    a: GatewayProcess
    b: GatewayProcess
    c: GatewayProcess

    def keys(self, namespace: str) -> list[bytes]:
        with redis.Redis.from_url(self.url) as client:
            return list(client.scan_iter(match=f"{namespace}:*"))


@pytest.fixture(scope="module")
def redis_gateways(emulator_servers: Emulators, redis_url: str,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisGateways]:
    shared, other = new_namespace(), new_namespace()
    tmp_path = tmp_path_factory.mktemp("gateways")
    with gateway_processes(emulator_servers, tmp_path, redis_url,
                           [shared, shared, other]) as (a, b, c):
        yield RedisGateways(redis_url, shared, other, a, b, c)


def test_redis_cache_is_shared_between_processes_of_one_namespace(
    emulators: Emulators, redis_gateways: RedisGateways
) -> None:
    warmed = _no_errors(_query(redis_gateways.a.url, ALL_SOURCES))
    assert all(_calls(emulators)[kind] for kind in KINDS)
    _clear(emulators)

    from_b = _no_errors(_query(redis_gateways.b.url, ALL_SOURCES))
    assert _calls(emulators) == {kind: [] for kind in KINDS}, "B did not use A's entries"
    assert from_b == warmed


def test_redis_namespaces_keep_processes_apart(
    emulators: Emulators, redis_gateways: RedisGateways
) -> None:
    gw = redis_gateways
    warmed = _no_errors(_query(gw.a.url, CARECLOUD_ONLY))
    assert len(emulators["carecloud"].log) == 1
    assert gw.keys(gw.shared), "A wrote no entry under its namespace"
    assert not gw.keys(gw.other)
    _clear(emulators)

    from_c = _no_errors(_query(gw.c.url, CARECLOUD_ONLY))
    assert len(emulators["carecloud"].log) == 1, "C answered from A's namespace"
    assert from_c == warmed
    assert gw.keys(gw.other)


# --- 3. concurrent misses share one upstream call -----------------------------------------------


async def test_concurrent_identical_queries_on_cold_cache_make_one_call_per_url(
    emulators: Emulators,
) -> None:
    for running in emulators.values():
        running.faults.set(latency_ms=100)
    with _gateway(_config(emulators)) as gw:
        limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
        async with httpx.AsyncClient(base_url=gw, timeout=30, limits=limits) as client:
            responses = await asyncio.gather(
                *(client.post("/graphql", json={"query": ALL_SOURCES}) for _ in range(50)))
    bodies = [r.json() for r in responses]
    assert all("errors" not in b for b in bodies), [b["errors"] for b in bodies if "errors" in b]
    assert all(b == bodies[0] for b in bodies)
    counts = Counter((kind, call) for kind, calls in _calls(emulators).items() for call in calls)
    assert {kind for kind, _ in counts} == set(KINDS)
    repeated = {call: n for call, n in counts.items() if n > 1}
    assert not repeated, f"one upstream URL asked more than once: {repeated}"


# --- 4. stale-if-error ---------------------------------------------------------------------------

SHORT_TTLS = {"cache_ttl_seconds": 0.5, "group_cache_ttl_seconds": 0.5, "stale_grace_seconds": 60,
              "max_retries": 0}


def test_stale_entry_answers_for_a_failing_source_within_the_grace_only(
    emulators: Emulators,
) -> None:
    joptic = emulators["joptic"]
    long_grace = _config(emulators, defaults=SHORT_TTLS)
    # Fresh 0.5 s, then stale for 0.6 s: past 1.1 s the entry may not answer (the cache layer's
    # grace check and the store's own expiry say so; tests/upstream moves a ManualClock across
    # both bounds). After 1.3 s of sleep the short-grace entry is past its grace however slow the
    # machine (slowness only makes it older), and the long-grace one has some 58 s of its 60 s
    # grace left: no bound here is tighter than seconds.
    short_grace = _config(emulators, defaults={**SHORT_TTLS, "stale_grace_seconds": 0.6})
    with _gateway(long_grace) as gw, _gateway(short_grace) as gw_short:
        fresh = _no_errors(_query(gw, JOPTIC_ONLY))
        assert _no_errors(_query(gw_short, JOPTIC_ONLY)) == fresh
        time.sleep(1.3)
        joptic.faults.set(status=503)
        joptic.log.clear()

        expired = _query(gw_short, JOPTIC_ONLY)
        errors = expired.get("errors") or []
        assert errors, expired
        assert errors[0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert errors[0]["extensions"]["source"] == "joptic"
        assert "joptic" in errors[0]["message"]
        assert not expired.get("extensions", {}).get("stale")
        joptic.log.clear()

        stale = _query(gw, JOPTIC_ONLY)
        assert "errors" not in stale, stale["errors"]
        assert stale["data"] == fresh
        marks = stale.get("extensions", {}).get("stale")
        assert isinstance(marks, list) and len(marks) == 1, stale
        assert marks[0]["source"] == "joptic"
        past = marks[0]["secondsPastFresh"]
        assert isinstance(past, int | float) and 0.5 <= past < 60
        # The upstream was really asked (and failed) before the stale entry answered.
        assert [r.status for r in joptic.log.records] == [503]


# --- 5. language in the cache key ---------------------------------------------------------------


def test_language_is_part_of_the_cache_key(emulators: Emulators) -> None:
    carecloud = emulators["carecloud"]
    with _gateway(_config(emulators)) as gw:
        czech = _no_errors(_query(gw, CARECLOUD_ONLY, {"Accept-Language": "cs"}))
        assert len(carecloud.log) == 1
        carecloud.log.clear()

        english = _no_errors(_query(gw, CARECLOUD_ONLY, {"Accept-Language": "en"}))
        records = carecloud.log.records
        assert len(records) == 1, "the en query was answered from the cs entry"
        assert records[0].headers.get("accept-language") == "en"
        czech_names = [n["name"] for n in czech["productGroups"]["nodes"]]
        english_names = [n["name"] for n in english["productGroups"]["nodes"]]
        assert czech_names != english_names
        carecloud.log.clear()

        # Each language has its own entry: both answer warm now.
        assert _no_errors(_query(gw, CARECLOUD_ONLY, {"Accept-Language": "cs"})) == czech
        assert _no_errors(_query(gw, CARECLOUD_ONLY, {"Accept-Language": "en"})) == english
        assert len(carecloud.log) == 0


# --- 6. /readyz ---------------------------------------------------------------------------------


def test_readyz_reports_sources_and_the_redis_cache(emulators: Emulators,
                                                    redis_gateways: RedisGateways) -> None:
    # A gateway process, with its Redis cache.
    base = redis_gateways.a.url
    _no_errors(_query(base, EVERY_SOURCE_AGAIN))
    response = httpx.get(f"{base}/readyz", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    ready: Json = response.json()
    assert ready["status"] == "ready"
    assert ready["cache"] == "redis"
    assert set(ready["sources"]) == set(KINDS)
    for name, source in ready["sources"].items():
        assert source["breaker"] == "closed", name
        assert isinstance(source["lastSuccess"], str) and source["lastSuccess"], name
        assert source["lastError"] is None, name


def test_readyz_says_memory_for_the_default_cache(emulators: Emulators) -> None:
    with _gateway(_config(emulators)) as gw:
        ready: Json = httpx.get(f"{gw}/readyz", timeout=10).json()
    assert ready["cache"] == "memory"
    assert ready["status"] == "ready"
    assert all(s["lastSuccess"] is None for s in ready["sources"].values())  # nothing asked yet


# --- 7. bounded by bytes, least recently used out first ------------------------------------------

# One document; each request's dates make ten distinct Comestri answers of ~66 KB (every field of
# 100 products), so the store and the memo fill while the document caches do not.
DATES = "query Dates(" + ", ".join(f"$d{i}: DateTime!" for i in range(10)) + ") { " + " ".join(
    f'p{i}: products(first: 100, filter: {{sources: ["comestri"], createdAfter: $d{i}}}) '
    "{ nodes { name status description categories attributes { code value } } }"
    for i in range(10)) + " }"


def _dates(n: int) -> dict[str, str]:
    return {f"d{i}": f"20{i:02d}-01-01T00:{n // 60:02d}:{n % 60:02d}Z" for i in range(10)}


def test_store_and_memo_keep_within_their_byte_bounds(emulators: Emulators) -> None:
    config = _config(emulators)
    cache = config.cache.model_copy(update={"memory_max_bytes": 2 * 2**20,
                                            "decoded_max_bytes": 3 * 2**20})
    app = create_app(config.model_copy(update={"cache": cache}))
    runtime = app.state.runtime
    memo = runtime.adapters["comestri"].client.memo
    assert all(a.client.memo is memo for a in runtime.adapters.values())  # one per process
    assert isinstance(runtime.store._cache, MemoryBackend)
    stored = runtime.store._cache.entries
    with ServerThread({"gw": app}) as servers, httpx.Client(timeout=30) as client:
        base = servers.urls["gw"]

        def ask(n: int) -> Json:
            response = client.post(f"{base}/graphql",
                                   json={"query": DATES, "variables": _dates(n)})
            return _no_errors(response.json())

        first = ask(0)
        for n in range(1, 30):  # 300 answers, ~20 MB: ten times the store's bound
            ask(n)
            assert stored.bytes <= 2 * 2**20 and memo.bytes <= 3 * 2**20
        assert len(emulators["comestri"].log) == 300
        assert 20 <= len(stored) < 40  # full: ~30 answers of ~66 KB

        _clear(emulators)
        ask(29)  # the newest answers are kept: no upstream request
        assert len(emulators["comestri"].log) == 0
        assert ask(0) == first  # the oldest were dropped: asked again, same answer
        assert len(emulators["comestri"].log) == 10


# --- upstream calls, cold and warm (throughput is the benchmark's: make bench) -------------------


def _ask_all_sources(base: str, n: int) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(n):
            _no_errors(_query(client, ALL_SOURCES))


def test_upstream_calls_cold_vs_warm(emulators: Emulators) -> None:
    with _gateway(_config(emulators)) as cached, _gateway(
            _config(emulators, defaults=UNCACHED)) as uncached:
        _no_errors(_query(cached, ALL_SOURCES))
        cold_calls = _total(_calls(emulators))
        _clear(emulators)
        _no_errors(_query(cached, ALL_SOURCES))
        warm_calls = _total(_calls(emulators))

        _ask_all_sources(cached, 200)
        assert _total(_calls(emulators)) == 0
        _ask_all_sources(uncached, 50)
        assert _total(_calls(emulators)) == 50 * cold_calls
    print(f"\nupstream calls per query: cold {cold_calls}, warm {warm_calls}")
    assert warm_calls == 0 < cold_calls
