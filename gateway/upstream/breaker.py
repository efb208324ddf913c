"""A circuit breaker per source, and the source's health as ``/readyz`` reports it.

Closed: requests pass. It opens when, over the last ``window`` seconds, at least ``threshold``
calls failed (connection errors, timeouts, 5xx) and they were at least ``failure_rate`` of the
calls: a run of failures opens it, a few failures among many good answers do not. Open: requests
fail at once with ``UPSTREAM_UNAVAILABLE`` and cost the upstream nothing, except that while
requests keep asking, one of them goes through as a probe at most every ``reset`` seconds; its
success closes the breaker (the source is back as soon as it answers, within ``reset``), its
failure keeps it open for ``reset`` more. Nobody asking, nothing is probed: a source that hangs
costs one call per ``reset`` plus its timeout while it is needed (two seconds and a 10 s
timeout: five calls a minute). 429 is not a failure of the upstream's health: it is the
upstream protecting itself, and retries honour its ``Retry-After``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import UpstreamUnavailable
from gateway.upstream.layer import Layer

__all__ = ["BreakerPolicy", "BreakerState", "BreakerTransport", "SourceHealth"]

MAX_OUTCOMES = 1024  # outcomes kept for the window (the rate of the last ones when more came)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"  # open, and a probe is in flight or may go now


@dataclass(frozen=True, kw_only=True)
class BreakerPolicy:
    threshold: int = 5  # failures in the window, at least, to open
    failure_rate: float = 0.5  # and their share of the window's calls, at least
    window: float = 10.0  # seconds of outcomes the rule reads
    reset: float = 2.0  # seconds between probes while open


class SourceHealth:
    """The breaker of one source, and what happened last."""

    def __init__(self, source: str, policy: BreakerPolicy, *, clock: Clock = SYSTEM_CLOCK
                 ) -> None:
        self.source = source
        self.policy = policy
        self.clock = clock
        self.failures = 0  # consecutive (reported)
        self.outcomes: deque[tuple[float, bool]] = deque(maxlen=MAX_OUTCOMES)  # (when, failed)
        self.opened_at: float | None = None
        self.probed_at = 0.0  # when the last probe went, or failed
        self.probing = False
        self.last_success: float | None = None  # clock.wall()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        # Told each state the breaker is seen in when it differs from the last (the metrics'
        # gauge); an open breaker turns half-open with time, noticed at the next request.
        self.on_state: Callable[[BreakerState], None] | None = None
        self._published: BreakerState | None = None

    def watch(self, on_state: Callable[[BreakerState], None]) -> None:
        self.on_state = on_state
        self._publish(self.state)

    def _publish(self, state: BreakerState) -> None:
        if state is not self._published and self.on_state is not None:
            self._published = state
            self.on_state(state)

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.probing or self._probe_due():
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def _probe_due(self) -> bool:
        return self.clock.monotonic() - self.probed_at >= self.policy.reset

    def admit(self) -> None:
        """Let a request through (when open: as the probe, if one is due and none is in
        flight), or fail it at once."""
        state = self.state
        if state is not self._published:
            self._publish(state)
        if state is BreakerState.CLOSED:
            return
        if self.probing or not self._probe_due():
            self._refuse()
        self.probing, self.probed_at = True, self.clock.monotonic()

    def still_admits(self) -> None:
        """For a request admitted earlier that then waited (for a connection): fail it if the
        breaker opened meanwhile, unless a probe is in flight (it may be this one)."""
        if self.opened_at is not None and not self.probing:
            self._refuse()

    def _refuse(self) -> None:
        left = 0.0 if self.probing else self.policy.reset - (
            self.clock.monotonic() - self.probed_at)
        raise UpstreamUnavailable(
            f"source '{self.source}' is failing; the gateway stopped calling it for now",
            source=self.source, retry_after=round(max(left, 0.0), 1))

    def succeeded(self) -> None:
        if self.opened_at is not None:  # the probe: the source is back, its past forgotten
            self.outcomes.clear()
        self.failures, self.opened_at, self.probing = 0, None, False
        self.outcomes.append((self.clock.monotonic(), False))
        self.last_success = self.clock.wall()
        if self._published is not BreakerState.CLOSED:
            self._publish(BreakerState.CLOSED)

    def failed(self, what: str) -> None:
        now = self.clock.monotonic()
        self.failures += 1
        self.last_error, self.last_error_at = what, self.clock.wall()
        if self.opened_at is not None:  # the probe failed (or a call admitted before opening)
            if self.probing:
                self.probing, self.probed_at = False, now
            return
        self.outcomes.append((now, True))
        if self._tripped(now):
            self.opened_at = self.probed_at = now
            self._publish(BreakerState.OPEN)

    def cancelled(self) -> None:
        """A call ended without an outcome (its request was cancelled): if it was the probe,
        another may go."""
        if self.probing:
            self.probing, self.probed_at = False, 0.0

    def _tripped(self, now: float) -> bool:
        """Whether the window's failures open the breaker (the older outcomes let go)."""
        outcomes, since = self.outcomes, now - self.policy.window
        while outcomes and outcomes[0][0] < since:
            outcomes.popleft()
        failed = sum(1 for _, bad in outcomes if bad)
        return failed >= self.policy.threshold and failed >= self.policy.failure_rate * len(
            outcomes)

    def report(self) -> dict[str, object]:
        return {
            "breaker": self.state.value,
            "consecutiveFailures": self.failures,
            "lastSuccess": _iso(self.last_success),
            "lastError": self.last_error,
            "lastErrorAt": _iso(self.last_error_at),
        }


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class BreakerTransport(Layer):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, health: SourceHealth) -> None:
        super().__init__(inner)
        self.health = health

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.health.admit()
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TimeoutException:
            self.health.failed("timeout")
            raise
        except httpx.HTTPError as exc:
            self.health.failed(type(exc).__name__)
            raise
        except BaseException:
            self.health.cancelled()  # let another probe through
            raise
        if response.status_code >= 500:
            self.health.failed(f"HTTP {response.status_code}")
        else:
            self.health.succeeded()
        return response
