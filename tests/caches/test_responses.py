"""ResponseCache alone: keys, the memory tier's byte bound, expiry by its clock, the Redis tier."""

from __future__ import annotations

import uuid

from gateway.caches.responses import ResponseCache
from gateway.caches.store import ResponseStore
from gateway.config import ResponseCacheSettings
from tests.clock import ManualClock

Q = "query Q($n: Int) { productGroups(first: $n) { nodes { name } } }"


def test_keys_differ_by_every_part_and_ignore_variable_order() -> None:
    base = ResponseCache.key(Q, "Q", {"n": 1, "m": 2}, language="en", client="")
    assert base == ResponseCache.key(Q, "Q", {"m": 2, "n": 1}, language="en", client="")
    others = [
        ResponseCache.key(Q + " ", "Q", {"n": 1, "m": 2}, language="en"),
        ResponseCache.key(Q, None, {"n": 1, "m": 2}, language="en"),
        ResponseCache.key(Q, "Q", {"n": 2, "m": 2}, language="en"),
        ResponseCache.key(Q, "Q", {"n": 1, "m": 2}, language="cs"),
        ResponseCache.key(Q, "Q", {"n": 1, "m": 2}, language="en", client="client-a"),
    ]
    assert len({base, *others}) == 6
    # Length-prefixed parts: moving text from one part to the next is another key.
    assert ResponseCache.key("ab", "c", None, language="") != ResponseCache.key(
        "a", "bc", None, language="")


async def test_kept_for_the_freshness_left_at_most_the_maximum() -> None:
    manual = ManualClock()
    cache = ResponseCache(ResponseCacheSettings(max_ttl_seconds=60), clock=manual.clock)
    kept = await cache.put("k", b"body", fresh_until=manual.now + 20)
    assert kept is not None and kept.max_age(manual.now) == 20
    manual.advance(19)
    assert await cache.get("k") == kept
    manual.advance(2)
    assert await cache.get("k") is None
    capped = await cache.put("k2", b"body", fresh_until=manual.now + 600)
    assert capped is not None and capped.max_age(manual.now) == 60
    assert await cache.put("k3", b"body", fresh_until=manual.now + 0.5) is None  # < 1 s left


async def test_memory_tier_is_bounded_by_bytes_least_recently_used_out() -> None:
    manual = ManualClock()
    cache = ResponseCache(ResponseCacheSettings(max_bytes=250, max_entry_bytes=200),
                          clock=manual.clock)
    for name in "abc":
        await cache.put(name, name.encode() * 100, fresh_until=manual.now + 30)
    assert await cache.get("a") is None  # 300 bytes > 250: the oldest went
    assert await cache.get("b") is not None  # now the most recently used
    await cache.put("d", b"d" * 100, fresh_until=manual.now + 30)
    assert await cache.get("c") is None and await cache.get("b") is not None
    assert await cache.put("big", b"x" * 201, fresh_until=manual.now + 30) is None


async def test_the_redis_tier_answers_another_process_until_expiry(redis_url: str) -> None:
    manual = ManualClock()
    store = ResponseStore(redis_url, namespace=f"t{uuid.uuid4().hex[:8]}", clock=manual.clock)
    try:
        writer = ResponseCache(ResponseCacheSettings(), clock=manual.clock, shared=store)
        reader = ResponseCache(ResponseCacheSettings(), clock=manual.clock, shared=store)
        kept = await writer.put("k", b'{"data":{}}', fresh_until=manual.now + 30)
        manual.advance(10)
        found = await reader.get("k")
        assert found is not None and kept is not None
        assert (found.body, found.etag) == (kept.body, kept.etag)
        assert found.max_age(manual.now) == 20
        manual.advance(21)
        assert await ResponseCache(ResponseCacheSettings(), clock=manual.clock,
                                   shared=store).get("k") is None
    finally:
        await store.close()
