"""A clock tests move by hand: code under test reads it instead of the system's."""

from __future__ import annotations

import asyncio

from gateway.clock import Clock

__all__ = ["ManualClock"]


class ManualClock:
    """Monotonic and wall time in one number; ``sleep`` moves it instead of waiting."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)  # still let other tasks run, as a real sleep would

    @property
    def clock(self) -> Clock:
        return Clock(monotonic=lambda: self.now, wall=lambda: self.now, sleep=self.sleep)
