"""The whole upstream stack (build_transport) under an UpstreamClient, over a scripted upstream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from gateway.config import SourceConfig
from gateway.errors import UpstreamUnavailable
from gateway.scope import RequestScope
from gateway.upstream.breaker import BreakerState
from gateway.upstream.client import UpstreamClient
from gateway.upstream.stack import build_transport, health_for
from gateway.upstream.store import ResponseStore
from tests.upstream.scripted import BASE, SOURCE, Script, state


def source_config(**tuning: Any) -> SourceConfig:
    settings: dict[str, Any] = {
        "max_retries": 1, "retry_backoff_seconds": 0.001, "retry_max_backoff_seconds": 0.002,
        "breaker_threshold": 100, "breaker_reset_seconds": 30.0, "cache_ttl_seconds": 10.0,
        "group_cache_ttl_seconds": 10.0, "stale_grace_seconds": 60.0, **tuning}
    return SourceConfig.model_validate({
        "name": SOURCE, "kind": "axim", "base_url": BASE, "token": "tok", **settings})


class Stack:
    def __init__(self, config: SourceConfig, store: ResponseStore, script: Script) -> None:
        self.health = health_for(config)
        self.script = script
        self.client = UpstreamClient(
            config, auth_headers={"accessToken": "tok"},
            transport=build_transport(config, store=store, health=self.health,
                                      network=httpx.MockTransport(script)))

    async def get(self, scope: RequestScope | None = None, path: str = "/items") -> Any:
        scope = scope or RequestScope(deadline=time.monotonic() + 5.0)
        return await self.client.get_json(path, {"page": 1}, scope=scope)


@pytest.fixture
async def stacks(store: ResponseStore) -> AsyncIterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def make(script: Script, **tuning: Any) -> Stack:
        made.append(Stack(source_config(**tuning), store, script))
        return made[-1]

    yield make
    for stack in made:
        await stack.client.aclose()


async def test_stack_retries_then_caches(stacks: Callable[..., Stack]) -> None:
    stack = stacks(Script(503, 200))

    assert await stack.get() == {"call": 2}
    assert stack.script.count == 2
    scope = RequestScope(deadline=time.monotonic() + 5.0)
    assert await stack.get(scope) == {"call": 2}
    assert stack.script.count == 2
    assert scope.stale == {}
    request = stack.script.calls[0]
    assert request.headers["accessToken"] == "tok"
    assert request.url.params["page"] == "1"


async def test_stack_answers_stale_and_marks_the_scope(stacks: Callable[..., Stack]) -> None:
    script = Script(200)
    stack = stacks(script, cache_ttl_seconds=0.05, stale_grace_seconds=60.0)
    assert await stack.get() == {"call": 1}
    script.then(503)
    await asyncio.sleep(0.08)

    scope = RequestScope(deadline=time.monotonic() + 5.0)
    assert await stack.get(scope) == {"call": 1}
    assert script.count == 3  # one refetch and its retry, both failing
    assert SOURCE in scope.stale
    assert isinstance(scope.stale[SOURCE], float)
    assert scope.stale[SOURCE] <= 60.0  # seconds past freshness, within the 60 s grace


async def test_stack_open_breaker_still_answers_stale(stacks: Callable[..., Stack]) -> None:
    script = Script(200)
    stack = stacks(script, cache_ttl_seconds=0.05, breaker_threshold=1, max_retries=0)
    assert await stack.get() == {"call": 1}
    script.then(503)
    await asyncio.sleep(0.08)
    assert await stack.get() == {"call": 1}  # the failure opens the breaker
    assert state(stack.health) is BreakerState.OPEN
    calls = script.count

    scope = RequestScope(deadline=time.monotonic() + 5.0)
    assert await stack.get(scope) == {"call": 1}
    assert script.count == calls
    assert SOURCE in scope.stale


async def test_stack_open_breaker_without_an_entry_fails_fast(
    stacks: Callable[..., Stack],
) -> None:
    script = Script(503)
    stack = stacks(script, breaker_threshold=1, max_retries=0)
    with pytest.raises(UpstreamUnavailable):
        await stack.get()
    with pytest.raises(UpstreamUnavailable) as caught:
        await stack.get()

    assert script.count == 1
    assert caught.value.source == SOURCE
    assert caught.value.retry_after is not None


async def test_stack_deduplicates_concurrent_misses(stacks: Callable[..., Stack]) -> None:
    script = Script(200, delay=0.03)
    stack = stacks(script)
    results = await asyncio.gather(*(stack.get() for _ in range(10)))

    assert script.count == 1
    assert all(r == {"call": 1} for r in results)
