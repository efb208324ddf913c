"""A source that hangs, then heals, asked as an operator's dashboard asks: a query every 0.5 s.

Over real sockets (the emulators' hang is real time; so is the upstream timeout). While the
source hangs, its open breaker lets a probe through at most every `breaker_reset_seconds` (and
only because queries keep asking): the source sees a handful of calls a minute, not one per
query. Once it answers again, the next probe closes the breaker: queries are whole again within
seconds of the heal, not after a long fixed reset.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from gateway.demo import demo_config
from tests.conftest import RunningEmulator
from tests.resilience.test_faults import CROSS_SOURCE, _ask, _errors, _gateway, _urls

pytestmark = pytest.mark.slow  # ~30 s of real time

Emulators = dict[str, RunningEmulator]
HANG_SECONDS = 20.0
EVERY = 0.5


def test_a_source_that_hung_is_back_within_seconds_of_healing(
        emulator_servers: Emulators, emulator: Callable[[str], RunningEmulator]) -> None:
    joptic = emulator("joptic")
    config = demo_config(_urls(emulator_servers), request_timeout=3, defaults={
        "cache_ttl_seconds": 0, "group_cache_ttl_seconds": 0, "timeout_seconds": 1,
        "max_retries": 0, "breaker_threshold": 3, "breaker_reset_seconds": 2})
    with _gateway(config) as base:
        whole = _ask(base, CROSS_SOURCE)
        assert "errors" not in whole

        joptic.faults.set(hang=True)
        joptic.log.clear()
        hung_at = time.monotonic()
        while time.monotonic() - hung_at < HANG_SECONDS:
            body = _ask(base, CROSS_SOURCE)
            assert {code for code, _ in _errors(body)} <= {"UPSTREAM_TIMEOUT",
                                                           "UPSTREAM_UNAVAILABLE"}
            time.sleep(EVERY)
        calls_while_hung = len(joptic.log)
        queries = HANG_SECONDS / EVERY

        joptic.faults.clear()
        healed_at = time.monotonic()
        while (body := _ask(base, CROSS_SOURCE)).get("errors"):
            assert time.monotonic() - healed_at < 10, body
            time.sleep(EVERY)
        back_after = time.monotonic() - healed_at
    assert body == whole
    # A probe every 2 s at most, each hanging its 1 s timeout: about 7 in 20 s (one per 3 s),
    # not the ~30 the queries would have made; the threshold's first 3 failures besides.
    assert calls_while_hung <= 3 + HANG_SECONDS / 3 + 2 < queries / 2, calls_while_hung
    assert back_after < 3, back_after
