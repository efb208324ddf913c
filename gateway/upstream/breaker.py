"""A circuit breaker per source, and the source's health as ``/readyz`` reports it.

Closed: requests pass; ``threshold`` consecutive failures (connection errors, timeouts, 5xx) open
it. Open: requests fail at once with ``UPSTREAM_UNAVAILABLE`` and cost the upstream nothing, until
``reset`` seconds pass. Half-open: one probe passes; its success closes the breaker, its failure
opens it again. 429 is not a failure of the upstream's health: it is the upstream protecting
itself, and retries honour its ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import UpstreamUnavailable
from gateway.upstream.layer import Layer

__all__ = ["BreakerPolicy", "BreakerState", "BreakerTransport", "SourceHealth"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, kw_only=True)
class BreakerPolicy:
    threshold: int = 5
    reset: float = 30.0


class SourceHealth:
    """The breaker of one source, and what happened last."""

    def __init__(self, source: str, policy: BreakerPolicy, *, clock: Clock = SYSTEM_CLOCK
                 ) -> None:
        self.source = source
        self.policy = policy
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
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
        if self.clock.monotonic() - self.opened_at < self.policy.reset:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def admit(self) -> None:
        """Let a request through, or fail it at once while the breaker is open."""
        state = self.state
        if state is not self._published:
            self._publish(state)
        if state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and self.probing):
            self._refuse()
        if state is BreakerState.HALF_OPEN:
            self.probing = True

    def still_admits(self) -> None:
        """For a request admitted earlier that then waited (for a connection): fail it if the
        breaker opened meanwhile. Half-open lets it go: it is the probe, or was admitted before
        the breaker opened and waited all of ``reset`` (a deadline that long is unusual)."""
        if self.state is BreakerState.OPEN:
            self._refuse()

    def _refuse(self) -> None:
        left = self.policy.reset - (self.clock.monotonic() - (self.opened_at or 0))
        raise UpstreamUnavailable(
            f"source '{self.source}' is failing; the gateway stopped calling it for now",
            source=self.source, retry_after=round(max(left, 0.0), 1))

    def succeeded(self) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False
        self.last_success = self.clock.wall()
        if self._published is not BreakerState.CLOSED:
            self._publish(BreakerState.CLOSED)

    def failed(self, what: str) -> None:
        self.failures += 1
        self.last_error, self.last_error_at = what, self.clock.wall()
        if self.probing or self.failures >= self.policy.threshold:
            self.opened_at = self.clock.monotonic()
            self._publish(BreakerState.OPEN)
        self.probing = False

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
            self.health.probing = False  # cancelled: let another probe through
            raise
        if response.status_code >= 500:
            self.health.failed(f"HTTP {response.status_code}")
        else:
            self.health.succeeded()
        return response
