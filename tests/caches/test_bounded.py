"""ByteBoundedLRU: the byte-bounded, least-recently-used-out memo behind every upstream-side cache.

(BoundedDict's tests are with the per-request memo's, in ``test_scope.py``.)
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.caches.bounded import ByteBoundedLRU, ExpiringLRU


def test_sizes_stay_within_the_bound_however_many_values_come() -> None:
    memo: ByteBoundedLRU[int, str] = ByteBoundedLRU(1000)
    for i in range(500):
        memo.put(i, f"value {i}", 90)

    assert memo.bytes <= 1000
    assert len(memo) == 11
    assert memo.get(499) == "value 499"
    assert memo.get(488) is None  # the 12th newest: gone


def test_the_least_recently_used_goes_first() -> None:
    memo: ByteBoundedLRU[str, int] = ByteBoundedLRU(30)
    memo.put("a", 1, 10)
    memo.put("b", 2, 10)
    memo.put("c", 3, 10)
    assert memo.get("a") == 1  # a use: "b" is now the least recently used

    memo.put("d", 4, 10)

    assert "b" not in memo
    assert [memo.get(key) for key in ("a", "c", "d")] == [1, 3, 4]


def test_a_large_value_evicts_as_many_as_it_needs() -> None:
    memo: ByteBoundedLRU[str, int] = ByteBoundedLRU(100)
    for key in "abcde":
        memo.put(key, 0, 20)

    memo.put("big", 1, 55)

    assert [key for key in "abcde" if key in memo] == ["d", "e"]
    assert memo.bytes == 95


def test_a_value_larger_than_the_bound_is_not_kept_and_evicts_nothing() -> None:
    memo: ByteBoundedLRU[str, int] = ByteBoundedLRU(100)
    memo.put("a", 1, 60)

    memo.put("huge", 2, 101)

    assert "huge" not in memo
    assert memo.get("a") == 1
    assert memo.bytes == 60


def test_putting_a_key_again_replaces_its_value_and_size() -> None:
    memo: ByteBoundedLRU[str, int] = ByteBoundedLRU(100)
    memo.put("a", 1, 60)
    memo.put("a", 2, 30)
    assert (memo.get("a"), memo.bytes, len(memo)) == (2, 30, 1)

    memo.put("a", 3, 200)  # too large now: the old value goes too, never served again
    assert ("a" in memo, memo.bytes) == (False, 0)


def test_pop_and_clear_give_the_bytes_back() -> None:
    memo: ByteBoundedLRU[str, int] = ByteBoundedLRU(100)
    memo.put("a", 1, 40)
    memo.put("b", 2, 50)

    assert memo.pop("a") == 1
    assert memo.pop("a") is None
    assert memo.bytes == 50
    memo.clear()
    assert (len(memo), memo.bytes) == (0, 0)


def test_a_zero_bound_keeps_nothing_and_bad_sizes_are_refused() -> None:
    memo: ByteBoundedLRU[str, int] = ByteBoundedLRU(0)
    memo.put("a", 1, 1)
    assert "a" not in memo
    with pytest.raises(ValueError):
        memo.put("a", 1, -1)
    with pytest.raises(ValueError):
        ByteBoundedLRU(-1)


# One operation: ("put", key, size) or ("get", key, 0).
operations = st.lists(st.tuples(st.sampled_from(["put", "get"]), st.integers(0, 9),
                                st.integers(0, 60)), max_size=60)


@given(operations)
def test_it_behaves_as_a_plain_lru_model(ops: list[tuple[str, int, int]]) -> None:
    memo: ByteBoundedLRU[int, int] = ByteBoundedLRU(100)
    model: OrderedDict[int, int] = OrderedDict()  # key -> size, least recently used first
    for op, key, size in ops:
        if op == "get":
            assert (memo.get(key) is not None) == (key in model)
            if key in model:
                model.move_to_end(key)
            continue
        model.pop(key, None)
        if size <= 100:
            while sum(model.values()) + size > 100:
                model.popitem(last=False)
            model[key] = size
        memo.put(key, key, size)
        assert memo.bytes == sum(model.values()) <= 100
        assert [k for k in range(10) if k in memo] == sorted(model)


def test_an_expiring_value_is_a_miss_from_its_time_and_leaves_when_read() -> None:
    memo: ExpiringLRU[str, str] = ExpiringLRU(100)
    memo.keep("a", "A", expires_at=10.0, nbytes=40)
    memo.keep("b", "B", expires_at=20.0, nbytes=40)
    assert memo.fresh("a", now=9.9) == "A"
    assert memo.fresh("a", now=10.0) is None and "a" not in memo and memo.bytes == 40
    memo.keep("c", "C", expires_at=30.0, nbytes=70)  # room made: "b" was the least recent
    assert "b" not in memo and memo.fresh("c", now=29.0) == "C"
    assert memo.fresh("missing", now=0.0) is None


def test_the_values_evicted_for_room_are_told_and_a_peek_is_not_a_use() -> None:
    evicted: list[tuple[str, str]] = []
    memo: ByteBoundedLRU[str, str] = ByteBoundedLRU(3, on_evict=lambda k, v: evicted.append((k, v)))
    for key in "abc":
        memo.put(key, key.upper(), 1)
    assert memo.peek("a") == "A"  # not a use: "a" is still the least recently used
    memo.put("d", "D", 1)
    assert evicted == [("a", "A")]
    memo.pop("b")  # dropped on purpose: not an eviction
    assert evicted == [("a", "A")]
    assert memo.items() == [("c", "C"), ("d", "D")]
