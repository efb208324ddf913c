"""Registered APQ documents have a byte budget of their own: in this process (least recently
used out first) and in Redis (the oldest registration out first, shared by processes, the
count kept right as registrations expire); and a registration counts against the client's
request budget."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import redis

from gateway.clock import Clock
from gateway.config import PersistedSettings
from gateway.edge.persisted import (
    ENTRY_OVERHEAD,
    MemoryDocuments,
    Persisted,
    PersistedOperations,
    RedisDocuments,
    document_store,
)
from tests.clock import ManualClock
from tests.edge.access_setup import Emulators, served, uncached_config
from tests.helpers import post

KB = 1000


def text(n: int, size: int = 100 * KB) -> str:
    return f"# {n:04d}\n" + "x" * (size - 7)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def test_in_memory_the_documents_stay_within_their_budget(manual: ManualClock) -> None:
    documents = MemoryDocuments(350 * KB, ttl=60, clock=manual.clock)
    for n in range(10):
        await documents.put(digest(text(n)), text(n))
    assert documents.kept.bytes <= 350 * KB
    kept = [n for n in range(10) if await documents.get(digest(text(n))) == text(n)]
    assert kept == [7, 8, 9]  # the least recently used went first
    assert documents.kept.bytes >= 3 * (100 * KB + ENTRY_OVERHEAD)  # their memory, counted
    manual.advance(61)
    assert await documents.get(digest(text(9))) is None  # expired


def redis_documents(url: str, namespace: str, clock: Clock, budget: int = 350 * KB
                    ) -> RedisDocuments:
    return RedisDocuments(url, namespace=namespace, max_bytes=budget, ttl=60, clock=clock)


async def test_in_redis_the_documents_stay_within_their_budget_and_are_shared(
        redis_url: str, manual: ManualClock) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    one, other = (redis_documents(redis_url, namespace, manual.clock) for _ in range(2))
    try:
        for n in range(10):
            await one.put(digest(text(n)), text(n))
        # The other process has no copy of its own: what it reads is what Redis kept.
        kept = [n for n in range(10) if await other.get(digest(text(n))) == text(n)]
        assert kept == [7, 8, 9]  # the oldest registrations went first
        with redis.Redis.from_url(redis_url) as client:
            prefix = f"{{{namespace}:apq2}}:"
            assert int(client.get(f"{prefix}bytes") or 0) == 3 * 100 * KB
            assert client.zcard(f"{prefix}order") == 3
            assert len(client.keys(f"{prefix}doc:*")) == 3
            # Registrations past their time leave the count before the next one is counted.
            manual.advance(61)
            await one.put(digest(text(10)), text(10))
            assert int(client.get(f"{prefix}bytes") or 0) == 100 * KB
            assert client.zcard(f"{prefix}order") == 1
        assert await other.get(digest(text(10))) == text(10)
        # A document larger than the whole budget is not kept (and pushes nothing out).
        await one.put(digest(text(11, 400 * KB)), text(11, 400 * KB))
        assert await other.get(digest(text(11, 400 * KB))) is None
        assert await other.get(digest(text(10))) == text(10)
    finally:
        await one.aclose()
        await other.aclose()


async def test_a_redis_that_fails_is_a_miss(manual: ManualClock) -> None:
    documents = redis_documents("redis://127.0.0.1:9/0", "t", manual.clock)
    try:
        await documents.put(digest(text(1)), text(1))  # logged, not raised
        fresh = redis_documents("redis://127.0.0.1:9/0", "t", manual.clock)
        assert await fresh.get(digest(text(1))) is None
        await fresh.aclose()
    finally:
        await documents.aclose()


def test_the_mode_chooses_the_store(manual: ManualClock) -> None:
    store = document_store(PersistedSettings(), cache="memory://", namespace="t",
                           clock=manual.clock)
    assert isinstance(store, MemoryDocuments)
    for mode in ("off", "trusted"):
        assert document_store(PersistedSettings(mode=mode), cache="memory://",
                              namespace="t", clock=manual.clock) is None


def test_a_registration_costs_a_request_per_64_kib() -> None:
    operations = PersistedOperations(PersistedSettings(), documents=MemoryDocuments(
        1, ttl=1, clock=ManualClock().clock))
    assert operations.registration_cost(Persisted("h", "{ a }", register=True)) == 1
    assert operations.registration_cost(Persisted("h", "x" * 300_000, register=True)) == 5
    assert operations.registration_cost(Persisted("h", "{ a }")) == 0


def apq(query: str) -> dict[str, Any]:
    return {"query": query,
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest(query)}}}


def test_registrations_count_against_the_clients_request_budget(
        emulator_servers: Emulators) -> None:
    config = uncached_config(emulator_servers, rate_limits={"requests_per_minute": 8})
    large = '{ node(id: "' + "x" * 300_000 + '") { id } }'  # 5 requests' worth to register
    with served(config) as base:
        assert post(base, **apq(large)).status_code == 200  # 1 request, and 5 to register it
        assert [post(base, "{ sources { id } }").status_code for _ in range(3)] == [
            200, 200, 429]  # 8 a minute: 6 were counted, 2 are left
        # Registered: its hash alone runs it (in the next minute, the budget permitting).
        assert post(base, extensions=apq(large)["extensions"]).status_code == 429


def test_a_client_past_its_budget_gets_its_answer_but_nothing_is_kept(
        emulator_servers: Emulators) -> None:
    config = uncached_config(emulator_servers, rate_limits={"requests_per_minute": 4})
    large = '{ node(id: "' + "y" * 300_000 + '") { id } }'  # 5 requests' worth to register
    with served(config) as base:
        answered = post(base, **apq(large))
        assert answered.json() == {"data": {"node": None}}
        missed = post(base, extensions=apq(large)["extensions"]).json()
        assert missed["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        # The refused registration counted nothing: 2 of the 4 requests are left.
        assert post(base, "{ sources { id } }").status_code == 200
