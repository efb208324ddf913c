"""The one place the gateway reads time: code that needs the time takes a :class:`Clock`.

``monotonic`` measures intervals inside one process (deadlines, breakers, per-process memos);
``wall`` stamps what other processes read too (cache entries shared through Redis); ``sleep``
waits (retry backoff). Tests pass a clock they move by hand instead of sleeping.

Example::

    health = SourceHealth("joptic", BreakerPolicy(), clock=SYSTEM_CLOCK)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["SYSTEM_CLOCK", "Clock"]


@dataclass(frozen=True, slots=True)
class Clock:
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


SYSTEM_CLOCK = Clock()
