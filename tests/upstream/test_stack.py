"""The whole upstream stack (build_transport) under an UpstreamClient, over a scripted upstream.

Every layer reads the test's :class:`~tests.clock.ManualClock` (the store fixture's too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from gateway.caches.bounded import ByteBoundedLRU
from gateway.caches.store import ResponseStore
from gateway.config import SourceConfig
from gateway.errors import UpstreamBudgetExceeded, UpstreamTimeout, UpstreamUnavailable
from gateway.scope import RequestScope
from gateway.upstream.breaker import BreakerState
from gateway.upstream.client import Parse, UpstreamClient, memo_bytes
from gateway.upstream.stack import build_transport, health_for
from tests.clock import ManualClock
from tests.upstream.scripted import BASE, SOURCE, Script, settle, state, until


def source_config(**tuning: Any) -> SourceConfig:
    settings: dict[str, Any] = {
        "max_retries": 1, "retry_backoff_seconds": 0.2, "retry_max_backoff_seconds": 5.0,
        "breaker_threshold": 100, "breaker_reset_seconds": 30.0, "cache_ttl_seconds": 60.0,
        "group_cache_ttl_seconds": 60.0, "stale_grace_seconds": 600.0, **tuning}
    return SourceConfig.model_validate({
        "name": SOURCE, "kind": "axim", "base_url": BASE, "token": "tok", **settings})


class Stack:
    def __init__(self, config: SourceConfig, store: ResponseStore, script: Script,
                 manual: ManualClock) -> None:
        self.manual = manual
        self.health = health_for(config, clock=manual.clock)
        self.script = script
        self.client = UpstreamClient(
            config, auth_headers={"accessToken": "tok"},
            transport=build_transport(config, store=store, health=self.health,
                                      network=httpx.MockTransport(script), clock=manual.clock))

    def scope(self) -> RequestScope:
        """A request's scope, its deadline a minute from now by the layers' clock."""
        return RequestScope(deadline=self.manual.now + 60.0)

    async def get(self, scope: RequestScope | None = None, path: str = "/items") -> Any:
        return await self.client.get_json(path, {"page": 1}, scope=scope or self.scope())


@pytest.fixture
async def stacks(store: ResponseStore, manual: ManualClock
                 ) -> AsyncIterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def make(script: Script, **tuning: Any) -> Stack:
        made.append(Stack(source_config(**tuning), store, script, manual))
        return made[-1]

    yield make
    for stack in made:
        await stack.client.aclose()


async def test_stack_retries_then_caches(stacks: Callable[..., Stack]) -> None:
    stack = stacks(Script(503, 200))

    assert await stack.get() == {"call": 2}
    assert stack.script.count == 2
    assert len(stack.manual.slept) == 1  # one backoff before the retry
    scope = stack.scope()
    assert await stack.get(scope) == {"call": 2}
    assert stack.script.count == 2
    assert scope.stale == {}
    request = stack.script.calls[0]
    assert request.headers["accessToken"] == "tok"
    assert request.url.params["page"] == "1"


async def test_a_fresh_entry_answers_before_any_request_is_built(
    stacks: Callable[..., Stack], manual: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client asks the cache first: a hit counts as one, is fresh as long as the entry, and
    builds no httpx request."""
    stack = stacks(Script(200))
    built: list[httpx.Request] = []
    build = stack.client._request

    def counted(*args: Any) -> httpx.Request:
        built.append(build(*args))
        return built[-1]

    monkeypatch.setattr(stack.client, "_request", counted)
    assert await stack.get() == {"call": 1}
    assert len(built) == 1
    manual.advance(10.0)
    scope = stack.scope()
    assert await stack.get(scope) == {"call": 1}
    assert len(built) == 1
    usage = scope.usage[SOURCE]
    assert (usage.requests, usage.cache_hits) == (0, 1)
    assert scope.fresh_until == pytest.approx(manual.now + 50.0, abs=0.01)
    manual.advance(51.0)  # past the TTL: the usual way, through the stack
    assert await stack.get() == {"call": 2}
    assert len(built) == 2


async def test_a_fresh_entry_in_memory_answers_without_a_task_by_the_same_rules(
        stacks: Callable[..., Stack], manual: ManualClock) -> None:
    """A hit in the memory store answers at once (no task, which was a tenth of a warm query's
    CPU); the request's upstream budget and deadline still apply to it as to any call."""
    stack = stacks(Script(200))
    assert await stack.get() == {"call": 1}
    loop = asyncio.get_running_loop()
    created: list[object] = []

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        scope = stack.scope()
        assert await stack.get(scope) == {"call": 1}
        assert await stack.get(scope) == {"call": 1}  # the request's own memo, still no task
        assert created == []
        assert (scope.usage[SOURCE].cache_hits, scope.upstream_requests) == (1, 1)
    finally:
        loop.set_task_factory(None)
    with pytest.raises(UpstreamBudgetExceeded):
        await stack.get(RequestScope(deadline=manual.now + 60.0, upstream_budget=0))
    with pytest.raises(UpstreamTimeout):
        await stack.get(RequestScope(deadline=stack.client.clock.monotonic() - 1.0))
    assert stack.script.count == 1


async def test_stack_answers_stale_and_marks_the_scope(
    stacks: Callable[..., Stack], manual: ManualClock
) -> None:
    script = Script(200)
    stack = stacks(script, cache_ttl_seconds=60.0, stale_grace_seconds=600.0)
    assert await stack.get() == {"call": 1}
    script.then(503)
    manual.advance(90.0)

    scope = stack.scope()
    assert await stack.get(scope) == {"call": 1}
    assert script.count == 3  # one refetch and its retry, both failing
    # Seconds past freshness: 90 s old with a 60 s TTL, plus the retry's backoff (< 0.2 s).
    assert scope.stale == {SOURCE: pytest.approx(30.0, abs=0.25)}


async def test_stack_open_breaker_still_answers_stale(
    stacks: Callable[..., Stack], manual: ManualClock
) -> None:
    script = Script(200)
    stack = stacks(script, cache_ttl_seconds=60.0, breaker_threshold=1, max_retries=0)
    assert await stack.get() == {"call": 1}
    script.then(503)
    manual.advance(61.0)
    assert await stack.get() == {"call": 1}  # the failure opens the breaker
    assert state(stack.health) is BreakerState.OPEN
    calls = script.count

    scope = stack.scope()
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
    script = Script(200)
    script.gate = asyncio.Event()  # the upstream answers when the test releases it
    stack = stacks(script)
    gets = [asyncio.ensure_future(stack.get()) for _ in range(10)]
    await until(lambda: script.count == 1)
    await settle()  # the other nine have joined the held call by now
    assert script.count == 1
    script.gate.set()
    results = await asyncio.gather(*gets)

    assert script.count == 1
    assert all(r == {"call": 1} for r in results)


def layers(transport: httpx.AsyncBaseTransport) -> list[str]:
    names = []
    while True:
        names.append(type(transport).__name__)
        inner = getattr(transport, "inner", None)
        if inner is None:
            return names
        transport = inner


@pytest.mark.parametrize(("tuning", "expected"), [
    ({}, ["DedupTransport", "CacheTransport", "ObserveTransport", "RetryTransport",
          "BreakerTransport", "ConcurrencyLimitTransport", "MockTransport"]),
    ({"max_retries": 0, "cache_ttl_seconds": 0, "group_cache_ttl_seconds": 0},
     ["DedupTransport", "ObserveTransport", "BreakerTransport", "ConcurrencyLimitTransport",
      "MockTransport"]),
    ({"cache_ttl_seconds": 0}, ["DedupTransport", "CacheTransport", "ObserveTransport",
                                "RetryTransport", "BreakerTransport",
                                "ConcurrencyLimitTransport", "MockTransport"]),
    ({"dedup": False, "max_retries": 0}, ["CacheTransport", "ObserveTransport",
                                          "BreakerTransport", "ConcurrencyLimitTransport",
                                          "MockTransport"]),
], ids=["all", "retries-and-cache-off", "group-cache-only", "dedup-off"])
def test_a_policy_that_is_off_has_no_layer(store: ResponseStore, manual: ManualClock,
                                           tuning: dict[str, Any], expected: list[str]) -> None:
    config = source_config(**tuning)
    transport = build_transport(config, store=store, health=health_for(config),
                                network=httpx.MockTransport(Script()), clock=manual.clock)
    assert layers(transport) == expected


# --- what the client keeps read from cached answers: bounded by bytes ----------------------------


def large_json(request: httpx.Request) -> httpx.Response:
    """~80 KB of JSON, distinct per page: a page of products."""
    page = request.url.params["page"]
    return httpx.Response(200, json={"page": page, "items": [f"{page}-{i:06d}" * 4
                                                             for i in range(2000)]})


async def test_decoded_and_parsed_answers_stay_within_the_memo_bound(
    stacks: Callable[..., Stack],
) -> None:
    stack = stacks(Script(large_json), max_retries=0)
    stack.client.memo = ByteBoundedLRU(2 * 2**20)
    parsed: list[str] = []

    def count_items(body: Any) -> int:
        parsed.append(body["page"])
        return len(body["items"])

    for page in range(1, 61):  # 60 distinct answers: ~47 MB decoded and parsed, as estimated
        assert await stack.client.get_json("/items", {"page": page}, scope=stack.scope(),
                                           parse=Parse(count_items)) == 2000
        assert stack.client.memo.bytes <= 2 * 2**20
    body_bytes = len(large_json(stack.script.calls[-1]).content)
    assert stack.client.memo.bytes == len(stack.client.memo) * memo_bytes(body_bytes)

    # The newest answers are still decoded and parsed (a warm hit reads nothing again); the
    # oldest were dropped, and are read again from the response store (no upstream request).
    parsed.clear()
    await stack.client.get_json("/items", {"page": 60}, scope=stack.scope(),
                                parse=Parse(count_items))
    await stack.client.get_json("/items", {"page": 1}, scope=stack.scope(),
                                parse=Parse(count_items))
    assert parsed == ["1"]
    assert stack.script.count == 60


def test_the_client_builds_the_request_httpx_would_build() -> None:
    """Requests are built by the client itself (past httpx's send): the same URL (a base path
    kept, parameters encoded alike), headers (httpx's defaults, the source's token in its own
    letter case, the call's own) and timeouts as httpx's client builds."""
    config = SourceConfig.model_validate({"name": SOURCE, "kind": "axim",
                                          "base_url": "http://upstream.test/api/v2",
                                          "token": "tok", "timeout_seconds": 7})
    client = UpstreamClient(config, auth_headers={"accessToken": "tok"})
    params = {"search": "a b+c/é", "page": "2"}
    headers = {"X-Request-ID": "r-1", "accessToken": "client-own"}
    ours = client._request("/productGroup/all", tuple(params.items()), headers,
                           {"gateway.route": "/x"})
    theirs = client._http.build_request("GET", "/productGroup/all", params=params,
                                        headers=headers, extensions={"gateway.route": "/x"})
    assert str(ours.url) == str(theirs.url) == (
        "http://upstream.test/api/v2/productGroup/all?search=a+b%2Bc%2F%C3%A9&page=2")
    assert ours.headers.raw == theirs.headers.raw
    assert ours.extensions == theirs.extensions
