"""Retries with exponential backoff and full jitter, inside the request's deadline.

Retried (GET only, which every upstream call is): connection failures, 429, 502, 503 and 504,
waiting what ``Retry-After`` asks (capped) or the backoff. Never retried: other 4xx, and a try that
timed out reading — an upstream that hangs is not asked again and again; the circuit breaker
stops the next requests instead. No wait goes past the request's deadline, and each try's
timeout is cut to the time left.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.upstream.extensions import DEADLINE, RETRIED
from gateway.upstream.headers import retry_after_seconds
from gateway.upstream.layer import Layer

__all__ = ["RetryPolicy", "RetryTransport"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                httpx.ReadError, httpx.WriteError)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_retries: int = 2
    backoff: float = 0.2  # first wait; doubles per try, full jitter
    max_backoff: float = 5.0
    retry_after_cap: float = 10.0

    def wait(self, attempt: int, retry_after: str | None, rng: random.Random) -> float:
        asked = retry_after_seconds(retry_after)
        if asked is not None:
            return min(asked, self.retry_after_cap)
        return rng.uniform(0, min(self.max_backoff, self.backoff * 2 ** attempt))


def _note_retried(request: httpx.Request, status_class: str) -> None:
    """For the metrics layer above: a try that failed and was tried again."""
    retried = request.extensions.get(RETRIED)
    if retried is None:
        retried = request.extensions[RETRIED] = []
    retried.append(status_class)


class RetryTransport(Layer):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, policy: RetryPolicy,
                 rng: random.Random | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(inner)
        self.policy = policy
        self.rng = rng or random.Random()
        self.clock = clock

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            self._cut_timeout(request)
            try:
                response = await self.inner.handle_async_request(request)
            except RETRY_ERRORS:
                if not await self._backoff(request, attempt, None):
                    raise
                _note_retried(request, "none")
            else:
                if (response.status_code not in RETRY_STATUSES
                        or not await self._backoff(request, attempt,
                                                   response.headers.get("retry-after"))):
                    return response
                await response.aclose()
                _note_retried(request, f"{response.status_code // 100}xx")
            attempt += 1

    async def _backoff(self, request: httpx.Request, attempt: int, retry_after: str | None
                       ) -> bool:
        """Wait before the next try; False when no try is left or the deadline forbids it."""
        if request.method != "GET" or attempt >= self.policy.max_retries:
            return False
        wait = self.policy.wait(attempt, retry_after, self.rng)
        deadline = request.extensions.get(DEADLINE)
        if isinstance(deadline, float) and self.clock.monotonic() + wait >= deadline:
            return False
        await self.clock.sleep(wait)
        return True

    def _cut_timeout(self, request: httpx.Request) -> None:
        """Each try gets at most the time left before the deadline."""
        deadline = request.extensions.get(DEADLINE)
        timeout = request.extensions.get("timeout")
        if not isinstance(deadline, float) or not isinstance(timeout, dict):
            return
        left = max(0.001, deadline - self.clock.monotonic())
        request.extensions["timeout"] = {
            name: left if value is None else min(value, left) for name, value in timeout.items()}
