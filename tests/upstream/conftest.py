"""Fixtures of the ``gateway.upstream`` tests (the scripted upstream is in ``scripted.py``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.caches.store import ResponseStore
from tests.clock import ManualClock


@pytest.fixture
async def store(manual: ManualClock) -> AsyncIterator[ResponseStore]:
    """An in-memory response store of its own (a fresh namespace per test), on the test's clock.

    (``tests/caches/test_store.py`` has its own, over memory and a real Redis.)
    """
    memory = ResponseStore("memory://", namespace=f"t-{uuid.uuid4().hex}", clock=manual.clock)
    yield memory
    await memory.close()
