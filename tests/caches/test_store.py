"""ResponseStore in memory (bounded by bytes) and in a real Redis, and the CachedAnswer entry
format."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.caches.store import (
    ENTRY_OVERHEAD,
    FORMAT,
    CachedAnswer,
    MemoryBackend,
    ResponseStore,
)
from gateway.config import CacheSettings
from tests.clock import ManualClock
from tests.helpers import free_port

ANSWER = CachedAnswer(1_700_000_000.125, 200, "application/json; charset=utf-8",
                      b'{"items": [1, 2]}\nsecond line \xff')


async def open_store(request: pytest.FixtureRequest, kind: str) -> ResponseStore:
    url = "memory://" if kind == "memory" else request.getfixturevalue("redis_url")
    response_store = ResponseStore(url, namespace=f"t-{uuid.uuid4().hex}")
    assert response_store.url_kind == kind
    return response_store


@pytest.fixture(params=["memory", pytest.param("redis")])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ResponseStore]:
    response_store = await open_store(request, request.param)
    yield response_store
    await response_store.close()


@pytest.fixture(params=["memory", "redis"])
async def any_store(request: pytest.FixtureRequest) -> AsyncIterator[ResponseStore]:
    response_store = await open_store(request, request.param)
    yield response_store
    await response_store.close()


async def test_round_trip(store: ResponseStore) -> None:
    await store.set("key-1", ANSWER, 60)

    assert await store.get("key-1") == ANSWER
    assert await store.get("key-2") is None


async def test_keys_are_separate(store: ResponseStore) -> None:
    other = CachedAnswer(1_700_000_001.0, 203, "text/plain", b"other")
    await store.set("a", ANSWER, 60)
    await store.set("b", other, 60)

    assert await store.get("a") == ANSWER
    assert await store.get("b") == other


async def test_namespaces_do_not_share_entries(redis_url: str) -> None:
    first = ResponseStore(redis_url, namespace=f"t-{uuid.uuid4().hex}")
    second = ResponseStore(redis_url, namespace=f"t-{uuid.uuid4().hex}")
    try:
        await first.set("key", ANSWER, 60)
        assert await first.get("key") == ANSWER
        assert await second.get("key") is None
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("url", ["memory://", "redis"])
async def test_entry_expires_after_its_ttl_by_the_store_clock(
    request: pytest.FixtureRequest, url: str
) -> None:
    manual = ManualClock()
    if url == "redis":
        url = request.getfixturevalue("redis_url")
    store = ResponseStore(url, namespace=f"t-{uuid.uuid4().hex}", clock=manual.clock)
    try:
        await store.set("key", ANSWER, 30)
        manual.advance(29.9)
        assert await store.get("key") == ANSWER
        manual.advance(0.2)
        assert await store.get("key") is None
    finally:
        await store.close()


async def test_unreachable_redis_is_a_miss_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = ResponseStore(f"redis://127.0.0.1:{free_port()}/0", namespace="t-down")
    assert store.url_kind == "redis"
    started = time.monotonic()
    try:
        await store.set("key", ANSWER, 60)  # must not raise
        assert await store.get("key") is None
    finally:
        await store.close()
    assert time.monotonic() - started < 5
    messages = [r.getMessage() for r in caplog.records if r.name == "gateway.cache"]
    assert any("cache write failed" in m for m in messages)
    assert any("cache read failed" in m for m in messages)


def test_encode_decode_round_trip() -> None:
    raw = ANSWER.encode(expires_at=1_700_000_060.5)

    assert raw.startswith(FORMAT + b" ")
    assert CachedAnswer.decode(raw) == (ANSWER, 1_700_000_060.5)


def test_decode_keeps_a_content_type_with_spaces_and_an_empty_body() -> None:
    answer = CachedAnswer(12.5, 204, "text/html; charset=utf-8", b"")

    assert CachedAnswer.decode(answer.encode(expires_at=20.0)) == (answer, 20.0)


@pytest.mark.parametrize("raw", [
    b"",
    b"garbage",
    b"\x00\xff\xfe binary \n junk",
    b"cgw2 not-a-time 20.0 200 text/plain\nbody",
    b"cgw2 12.5 never 200 text/plain\nbody",
    b"cgw2 12.5 20.0 OK text/plain\nbody",
    b"cgw2 12.5 20.0 200\nbody",  # a field missing
    b"cgw1 12.5 200 text/plain\nbody",  # an older format
    b"cgw3 12.5 20.0 200 text/plain\nbody",  # a newer format
    b"CGW2 12.5 20.0 200 text/plain\nbody",
])
def test_decode_rejects_garbage_and_other_formats(raw: bytes) -> None:
    assert CachedAnswer.decode(raw) is None


async def test_store_ignores_an_entry_of_another_format(any_store: ResponseStore) -> None:
    await any_store._cache.set("key", b"cgw0 12.5 200 text/plain\nbody")

    assert await any_store.get("key") is None


def test_age_is_never_negative() -> None:
    assert CachedAnswer(1_000.0, 200, "", b"").age(now=900.0) == 0.0
    assert CachedAnswer(1_000.0, 200, "", b"").age(now=1_010.5) == 10.5


# --- the memory store's byte bound ----------------------------------------------------------------

MIB = 2**20


def memory_of(store: ResponseStore) -> MemoryBackend:
    assert isinstance(store._cache, MemoryBackend)
    return store._cache


def large_answer(i: int, size: int = 100_000) -> CachedAnswer:
    """A distinct answer of ``size`` body bytes (an upstream page of products, say)."""
    return CachedAnswer(1_700_000_000.0, 200, "application/json", b"%08d" % i * (size // 8))


async def test_memory_store_keeps_many_large_answers_within_memory_max_bytes() -> None:
    # 200 distinct ~100 KB answers (20 MB) into a 1 MiB store: what clients asking for distinct
    # dates or searches make, each for the TTL plus the stale grace.
    manual = ManualClock()
    store = ResponseStore("memory://", namespace="t", clock=manual.clock,
                          memory_max_bytes=MIB)
    keys = [f"cgw2:axim:fingerprint:{i:032x}" for i in range(200)]
    for i, key in enumerate(keys):
        await store.set(key, large_answer(i), 660)
        assert memory_of(store).entries.bytes <= MIB

    kept = [i for i, key in enumerate(keys) if await store.get(key) is not None]
    assert kept == list(range(190, 200))  # the 10 newest; the older went first
    encoded = len(large_answer(0).encode(expires_at=1_700_000_660.0))
    assert memory_of(store).entries.bytes == 10 * (len(keys[0]) + encoded + ENTRY_OVERHEAD)
    await store.close()


async def test_memory_store_drops_the_least_recently_read_first() -> None:
    manual = ManualClock()
    store = ResponseStore("memory://", namespace="t", clock=manual.clock,
                          memory_max_bytes=350_000)
    for key in ("a", "b", "c"):
        await store.set(key, large_answer(ord(key)), 60)
    assert await store.get("a") is not None  # read: "b" is now the least recently used

    await store.set("d", large_answer(4), 60)

    assert [await store.get(key) is not None for key in "abcd"] == [True, False, True, True]
    await store.close()


async def test_memory_store_skips_an_answer_larger_than_its_bound() -> None:
    store = ResponseStore("memory://", namespace="t", memory_max_bytes=150_000)
    await store.set("small", large_answer(1), 60)

    await store.set("huge", large_answer(2, size=200_000), 60)

    assert await store.get("huge") is None
    assert await store.get("small") == large_answer(1)  # and nothing was evicted for it
    await store.close()


async def test_memory_store_frees_an_expired_entry_when_read() -> None:
    manual = ManualClock()
    store = ResponseStore("memory://", namespace="t", clock=manual.clock)
    await store.set("key", large_answer(1), 30)
    assert memory_of(store).entries.bytes > 100_000

    manual.advance(32.0)  # past the entry's TTL and the backend's second of slack

    assert await store.get("key") is None
    assert memory_of(store).entries.bytes == 0
    await store.close()


def test_memory_store_bound_defaults_to_the_configured_default() -> None:
    store = ResponseStore("memory://", namespace="t")
    assert memory_of(store).entries.max_bytes == CacheSettings().memory_max_bytes == 64 * MIB


async def test_more_concurrent_reads_than_connections_wait_their_turn(redis_url: str) -> None:
    """Under load a request makes many reads at once (one per upstream call): past the pool's
    connections they wait for one, rather than fail and turn into misses."""
    store = ResponseStore(redis_url, namespace=f"t-{uuid.uuid4().hex}")
    try:
        await store.set("key", ANSWER, 60)
        found = await asyncio.gather(*(store.get("key") for _ in range(600)))
        assert found == [ANSWER] * 600
    finally:
        await store.close()
