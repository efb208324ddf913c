"""Each upstream policy layer alone over a scripted inner transport, then the whole stack.

Every layer is driven through a real ``httpx.AsyncClient`` whose transport is the layer, and
whose inner transport is an ``httpx.MockTransport`` over a :class:`Script` that counts calls.
Times are milliseconds, except the one test of an honoured ``Retry-After: 1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx
import pytest

from gateway.config import SourceConfig
from gateway.errors import UpstreamUnavailable
from gateway.upstream.breaker import (
    BreakerPolicy,
    BreakerState,
    BreakerTransport,
    SourceHealth,
)
from gateway.upstream.cache import CachePolicy, CacheTransport, cache_key, credential_fingerprint
from gateway.upstream.client import RequestScope, UpstreamClient
from gateway.upstream.dedup import DedupTransport
from gateway.upstream.extensions import DEADLINE, FRESHNESS, LANGUAGE, STALE_AGE
from gateway.upstream.limit import ConcurrencyLimitTransport
from gateway.upstream.retry import RETRY_STATUSES, RetryPolicy, RetryTransport
from gateway.upstream.stack import build_transport, health_for
from gateway.upstream.store import ResponseStore

BASE = "http://upstream.test"
SOURCE = "src"

# One scripted answer: a status (JSON body {"call": n}), an exception class to raise, an
# exception instance to raise, or a function building the response.
Answer = int | type[Exception] | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """A scripted upstream: answers in order (the last one repeats) and records every call.

    ``gate``, when set, holds every call until it is released.
    """

    def __init__(self, *answers: Answer, delay: float = 0.0) -> None:
        self.answers: list[Answer] = list(answers) or [200]
        self.calls: list[httpx.Request] = []
        self.timeouts: list[dict[str, Any]] = []
        self.delay = delay
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.most_in_flight = 0

    def then(self, *answers: Answer) -> None:
        """From the next call on, answer these instead."""
        self.answers = [*self.answers[: len(self.calls)], *answers]
        if len(self.answers) <= len(self.calls):  # the old script had run out
            self.answers = [*([200] * len(self.calls)), *answers]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        number = len(self.calls)
        self.timeouts.append(dict(request.extensions.get("timeout") or {}))
        answer = self.answers[min(number, len(self.answers)) - 1]
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.in_flight -= 1
        if isinstance(answer, int):
            return httpx.Response(answer, json={"call": number})
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, type):
            error = cast(type[Exception], answer)
            if issubclass(error, httpx.RequestError):
                raise error(f"scripted {error.__name__}", request=request)
            raise error(f"scripted {error.__name__}")
        return answer(request)

    @property
    def count(self) -> int:
        return len(self.calls)


def client_over(layer: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=layer, base_url=BASE)


def ext(
    *, deadline: float | None = 2.0, freshness: str | None = "products", language: str | None = "cs"
) -> dict[str, Any]:
    """Request extensions; ``deadline`` is seconds from now."""
    extensions: dict[str, Any] = {}
    if deadline is not None:
        extensions[DEADLINE] = time.monotonic() + deadline
    if freshness is not None:
        extensions[FRESHNESS] = freshness
    if language is not None:
        extensions[LANGUAGE] = language
    return extensions


def call_of(response: httpx.Response) -> int:
    """Which scripted call produced this body."""
    number: int = response.json()["call"]
    return number


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.002)


# -- CacheTransport -----------------------------------------------------------------------------


@pytest.fixture
async def store() -> AsyncIterator[ResponseStore]:
    memory = ResponseStore("memory://", namespace=f"t-{uuid.uuid4().hex}")
    yield memory
    await memory.close()


def cached(
    script: Script, store: ResponseStore, *, product_ttl: float = 10.0, group_ttl: float = 10.0,
    stale_grace: float = 10.0, credential: str = "cred-a",
) -> CacheTransport:
    return CacheTransport(
        httpx.MockTransport(script), store=store, source=SOURCE, credential=credential,
        policy=CachePolicy(product_ttl=product_ttl, group_ttl=group_ttl, stale_grace=stale_grace))


async def test_cache_serves_a_fresh_200_without_calling_upstream(store: ResponseStore) -> None:
    script = Script(200)
    async with client_over(cached(script, store)) as client:
        first = await client.get("/items?page=1", extensions=ext())
        second = await client.get("/items?page=1", extensions=ext())

    assert script.count == 1
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"call": 1}
    assert second.headers["content-type"] == "application/json"
    assert STALE_AGE not in first.extensions
    assert STALE_AGE not in second.extensions


@pytest.mark.parametrize("status", [201, 204])
async def test_cache_stores_every_2xx(store: ResponseStore, status: int) -> None:
    script = Script(lambda _: httpx.Response(status))
    async with client_over(cached(script, store)) as client:
        for _ in range(2):
            assert (await client.get("/items", extensions=ext())).status_code == status

    assert script.count == 1


@pytest.mark.parametrize("status", [301, 400, 401, 404, 429, 500, 503])
async def test_cache_does_not_store_a_non_2xx_answer(store: ResponseStore, status: int) -> None:
    script = Script(status)
    async with client_over(cached(script, store)) as client:
        first = await client.get("/items", extensions=ext())
        second = await client.get("/items", extensions=ext())

    assert script.count == 2
    assert (first.status_code, call_of(first)) == (status, 1)
    assert (second.status_code, call_of(second)) == (status, 2)


async def test_cache_passes_other_methods_through(store: ResponseStore) -> None:
    script = Script(200)
    async with client_over(cached(script, store)) as client:
        await client.post("/items", json={}, extensions=ext())
        await client.post("/items", json={}, extensions=ext())

    assert script.count == 2


@pytest.mark.parametrize(
    ("group_ttl", "product_ttl", "expired"),
    [(0.05, 10.0, "groups"), (10.0, 0.05, "products")],
)
async def test_cache_ttl_follows_the_freshness_extension(
    store: ResponseStore, group_ttl: float, product_ttl: float, expired: str
) -> None:
    script = Script(200)
    transport = cached(script, store, group_ttl=group_ttl, product_ttl=product_ttl)
    async with client_over(transport) as client:
        for kind in ("groups", "products"):
            await client.get(f"/{kind}", extensions=ext(freshness=kind))
        await asyncio.sleep(0.08)
        again = {kind: await client.get(f"/{kind}", extensions=ext(freshness=kind))
                 for kind in ("groups", "products")}

    assert script.count == 3
    kept = "products" if expired == "groups" else "groups"
    assert call_of(again[expired]) == 3
    assert call_of(again[kept]) in (1, 2)
    assert [r.url.path for r in script.calls] == ["/groups", "/products", f"/{expired}"]


async def test_cache_without_freshness_uses_the_product_ttl(store: ResponseStore) -> None:
    script = Script(200)
    async with client_over(cached(script, store, product_ttl=0.05, group_ttl=10)) as client:
        await client.get("/items", extensions=ext(freshness=None))
        await asyncio.sleep(0.08)
        await client.get("/items", extensions=ext(freshness=None))

    assert script.count == 2


async def test_cache_refetches_after_expiry(store: ResponseStore) -> None:
    script = Script(200)
    async with client_over(cached(script, store, product_ttl=0.05)) as client:
        await client.get("/items", extensions=ext())
        await asyncio.sleep(0.08)
        refetched = await client.get("/items", extensions=ext())
        again = await client.get("/items", extensions=ext())

    assert script.count == 2
    assert call_of(refetched) == call_of(again) == 2
    assert STALE_AGE not in refetched.extensions


async def test_a_zero_ttl_never_caches(store: ResponseStore) -> None:
    script = Script(200, 503)
    async with client_over(cached(script, store, product_ttl=0)) as client:
        await client.get("/items", extensions=ext())
        second = await client.get("/items", extensions=ext())

    assert script.count == 2
    assert second.status_code == 503


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError, httpx.ReadTimeout, 503, 500, 429,
     UpstreamUnavailable("breaker open", source=SOURCE)],
    ids=["ConnectError", "ReadTimeout", "503", "500", "429", "UpstreamUnavailable"],
)
async def test_cache_answers_stale_within_grace_when_upstream_fails(
    store: ResponseStore, failure: Answer
) -> None:
    script = Script(200, failure)
    async with client_over(cached(script, store, product_ttl=0.05, stale_grace=10)) as client:
        await client.get("/items", extensions=ext())
        await asyncio.sleep(0.08)
        stale = await client.get("/items", extensions=ext())

    assert script.count == 2
    assert stale.status_code == 200
    assert stale.json() == {"call": 1}
    assert stale.headers["content-type"] == "application/json"
    age = stale.extensions[STALE_AGE]
    assert isinstance(age, float)
    assert 0.0 <= age < 1.0


@pytest.mark.parametrize("status", [503, 429])
async def test_cache_passes_a_failure_through_beyond_grace(
    store: ResponseStore, status: int
) -> None:
    script = Script(200, status)
    async with client_over(cached(script, store, product_ttl=0.03, stale_grace=0.03)) as client:
        await client.get("/items", extensions=ext())
        await asyncio.sleep(0.1)
        failed = await client.get("/items", extensions=ext())

    assert script.count == 2
    assert (failed.status_code, call_of(failed)) == (status, 2)
    assert STALE_AGE not in failed.extensions


async def test_cache_raises_a_connect_error_beyond_grace(store: ResponseStore) -> None:
    script = Script(200, httpx.ConnectError)
    async with client_over(cached(script, store, product_ttl=0.03, stale_grace=0.03)) as client:
        await client.get("/items", extensions=ext())
        await asyncio.sleep(0.1)
        with pytest.raises(httpx.ConnectError):
            await client.get("/items", extensions=ext())

    assert script.count == 2


async def test_cache_without_an_entry_raises_the_upstream_error(store: ResponseStore) -> None:
    script = Script(httpx.ConnectError)
    async with client_over(cached(script, store)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/items", extensions=ext())


async def test_cache_keys_separate_languages(store: ResponseStore) -> None:
    script = Script(200)
    async with client_over(cached(script, store)) as client:
        czech = await client.get("/items", extensions=ext(language="cs"))
        english = await client.get("/items", extensions=ext(language="en"))
        none = await client.get("/items", extensions=ext(language=None))
        czech_again = await client.get("/items", extensions=ext(language="cs"))

    assert script.count == 3
    assert [call_of(r) for r in (czech, english, none, czech_again)] == [1, 2, 3, 1]


async def test_cache_keys_separate_credentials_over_one_store(store: ResponseStore) -> None:
    script = Script(200)
    alice = cached(script, store, credential=credential_fingerprint("alice-token"))
    bob = cached(script, store, credential=credential_fingerprint("bob-token"))
    alice_too = cached(script, store, credential=credential_fingerprint("alice-token"))
    async with client_over(alice) as a, client_over(bob) as b, client_over(alice_too) as a2:
        first = await a.get("/items", extensions=ext())
        other = await b.get("/items", extensions=ext())
        same = await a2.get("/items", extensions=ext())

    assert script.count == 2
    assert [call_of(r) for r in (first, other, same)] == [1, 2, 1]


async def test_cache_key_ignores_query_order(store: ResponseStore) -> None:
    script = Script(200)
    async with client_over(cached(script, store)) as client:
        first = await client.get("/items?a=1&b=2", extensions=ext())
        reordered = await client.get("/items?b=2&a=1", extensions=ext())
        different = await client.get("/items?a=1&b=3", extensions=ext())
        other_path = await client.get("/things?a=1&b=2", extensions=ext())

    assert [call_of(r) for r in (first, reordered, different, other_path)] == [1, 1, 2, 3]


def test_cache_key_names_format_source_and_credential_but_no_secret() -> None:
    fingerprint = credential_fingerprint("s3cret-token")
    request = httpx.Request("GET", f"{BASE}/items?page=2&size=10",
                            extensions={LANGUAGE: "cs"})
    key = cache_key(SOURCE, fingerprint, request)

    assert key.startswith("cgw1:")
    assert key.startswith(f"cgw1:{SOURCE}:{fingerprint}:")
    assert "s3cret" not in key and "page" not in key
    assert fingerprint != credential_fingerprint("other-token")
    assert len(fingerprint) == 16
    reordered = httpx.Request("GET", f"{BASE}/items?size=10&page=2", extensions={LANGUAGE: "cs"})
    english = httpx.Request("GET", f"{BASE}/items?page=2&size=10", extensions={LANGUAGE: "en"})
    assert cache_key(SOURCE, fingerprint, reordered) == key
    assert cache_key(SOURCE, fingerprint, english) != key
    assert cache_key("other", fingerprint, request) != key


async def test_cache_serves_a_gzipped_answer_decoded_on_miss_and_hit(
    store: ResponseStore,
) -> None:
    body = b'{"name": "\xc5\xbdlu\xc5\xa5ou\xc4\x8dk\xc3\xbd k\xc5\xaf\xc5\x88"}'
    script = Script(lambda _: httpx.Response(
        200, content=gzip.compress(body),
        headers={"content-encoding": "gzip", "content-type": "application/json"}))
    async with client_over(cached(script, store)) as client:
        miss = await client.get("/items", extensions=ext())
        hit = await client.get("/items", extensions=ext())

    assert script.count == 1
    for response in (miss, hit):
        assert response.content == body
        assert response.json() == {"name": "Žluťoučký kůň"}
        assert "content-encoding" not in response.headers


# -- DedupTransport -----------------------------------------------------------------------------


def deduped(script: Script, credential: str = "cred-a") -> DedupTransport:
    return DedupTransport(httpx.MockTransport(script), source=SOURCE, credential=credential)


async def test_dedup_makes_concurrent_identical_gets_one_call() -> None:
    script = Script(200, delay=0.03)
    async with client_over(deduped(script)) as client:
        responses = await asyncio.gather(
            *(client.get("/items?a=1&b=2", extensions=ext()) for _ in range(20)))
        later = await client.get("/items?a=1&b=2", extensions=ext())

    assert script.count == 2  # the 20 shared one call; the later one is not in flight with them
    assert all(r.status_code == 200 and r.json() == {"call": 1} for r in responses)
    assert call_of(later) == 2
    assert len({id(r) for r in responses}) == 20  # a response each


async def test_dedup_keeps_different_calls_apart() -> None:
    script = Script(200, delay=0.03)
    async with client_over(deduped(script)) as client:
        responses = await asyncio.gather(
            client.get("/items?a=1", extensions=ext()),
            client.get("/items?a=2", extensions=ext()),
            client.get("/other?a=1", extensions=ext()),
            client.get("/items?a=1", extensions=ext(language="en")),
            client.get("/items?a=1", extensions=ext()),
        )

    assert script.count == 4
    calls = [call_of(r) for r in responses]
    assert len(set(calls[:4])) == 4
    assert calls[4] == calls[0]


async def test_dedup_shares_an_error_with_every_waiter() -> None:
    script = Script(httpx.ConnectError, delay=0.02)
    async with client_over(deduped(script)) as client:
        results = await asyncio.gather(
            *(client.get("/items", extensions=ext()) for _ in range(5)), return_exceptions=True)

    assert script.count == 1
    assert all(isinstance(r, httpx.ConnectError) for r in results)


@pytest.mark.parametrize("short_first", [False, True], ids=["waiter-short", "owner-short"])
async def test_dedup_waiter_past_its_deadline_gives_up_without_cancelling_the_call(
    short_first: bool,
) -> None:
    script = Script(200, delay=0.15)
    async with client_over(deduped(script)) as client:
        patient_ext, hurried_ext = ext(deadline=5.0), ext(deadline=0.03)
        if short_first:
            hurried = asyncio.ensure_future(client.get("/items", extensions=hurried_ext))
            await asyncio.sleep(0)
            patient = asyncio.ensure_future(client.get("/items", extensions=patient_ext))
        else:
            patient = asyncio.ensure_future(client.get("/items", extensions=patient_ext))
            await asyncio.sleep(0)
            hurried = asyncio.ensure_future(client.get("/items", extensions=hurried_ext))
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await hurried
        assert time.monotonic() - started < 0.12
        assert not patient.done()
        response = await patient

    assert script.count == 1
    assert response.json() == {"call": 1}


# -- RetryTransport -----------------------------------------------------------------------------

QUICK = RetryPolicy(max_retries=2, backoff=0.001, max_backoff=0.002, retry_after_cap=10.0)


def retrying(script: Script, policy: RetryPolicy = QUICK) -> RetryTransport:
    return RetryTransport(httpx.MockTransport(script), policy=policy, rng=random.Random(0))


def retry_after(status: int, seconds: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, headers={"retry-after": seconds}, json={"call": 0})


def test_retry_statuses_are_the_documented_ones() -> None:
    assert frozenset({429, 502, 503, 504}) == RETRY_STATUSES


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_retry_gives_up_after_max_retries_with_the_last_response(status: int) -> None:
    script = Script(status)
    async with client_over(retrying(script)) as client:
        response = await client.get("/items", extensions=ext())

    assert script.count == 3
    assert (response.status_code, call_of(response)) == (status, 3)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_retry_recovers_when_a_later_try_succeeds(status: int) -> None:
    script = Script(status, status, 200)
    async with client_over(retrying(script)) as client:
        response = await client.get("/items", extensions=ext())

    assert script.count == 3
    assert (response.status_code, call_of(response)) == (200, 3)


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
     httpx.WriteError],
)
async def test_retry_retries_connection_failures_then_raises(error: type[Exception]) -> None:
    script = Script(error)
    async with client_over(retrying(script)) as client:
        with pytest.raises(error):
            await client.get("/items", extensions=ext())

    assert script.count == 3


async def test_retry_after_a_connect_error_can_succeed() -> None:
    script = Script(httpx.ConnectError, 200)
    async with client_over(retrying(script)) as client:
        response = await client.get("/items", extensions=ext())

    assert (script.count, call_of(response)) == (2, 2)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 500, 501])
async def test_retry_does_not_retry_other_statuses(status: int) -> None:
    script = Script(status)
    async with client_over(retrying(script)) as client:
        response = await client.get("/items", extensions=ext())

    assert script.count == 1
    assert response.status_code == status


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout])
async def test_retry_does_not_retry_a_timeout_after_connecting(error: type[Exception]) -> None:
    script = Script(error)
    async with client_over(retrying(script)) as client:
        with pytest.raises(error):
            await client.get("/items", extensions=ext())

    assert script.count == 1


async def test_retry_does_not_retry_other_methods() -> None:
    script = Script(503)
    async with client_over(retrying(script)) as client:
        response = await client.post("/items", json={}, extensions=ext())

    assert (script.count, response.status_code) == (1, 503)


async def test_retry_with_no_retries_allowed_makes_one_try() -> None:
    script = Script(503)
    async with client_over(retrying(script, RetryPolicy(max_retries=0, backoff=0.001))) as client:
        await client.get("/items", extensions=ext())

    assert script.count == 1


async def test_retry_honours_retry_after() -> None:
    script = Script(retry_after(503, "1"), 200)
    async with client_over(retrying(script)) as client:
        started = time.monotonic()
        response = await client.get("/items", extensions=ext(deadline=5.0))
        elapsed = time.monotonic() - started

    assert (script.count, response.status_code) == (2, 200)
    assert 1.0 <= elapsed < 1.5


async def test_retry_caps_retry_after() -> None:
    policy = RetryPolicy(max_retries=2, backoff=0.001, retry_after_cap=0.05)
    script = Script(retry_after(429, "100"), 200)
    async with client_over(retrying(script, policy)) as client:
        started = time.monotonic()
        response = await client.get("/items", extensions=ext(deadline=5.0))
        elapsed = time.monotonic() - started

    assert (script.count, response.status_code) == (2, 200)
    assert 0.05 <= elapsed < 0.5


async def test_retry_after_as_a_date_falls_back_to_the_backoff() -> None:
    script = Script(retry_after(503, "Wed, 21 Oct 2099 07:28:00 GMT"), 200)
    async with client_over(retrying(script)) as client:
        started = time.monotonic()
        response = await client.get("/items", extensions=ext(deadline=5.0))

    assert (script.count, response.status_code) == (2, 200)
    assert time.monotonic() - started < 0.5


async def test_retry_never_waits_past_the_deadline() -> None:
    script = Script(retry_after(503, "1"), 200)
    async with client_over(retrying(script)) as client:
        started = time.monotonic()
        response = await client.get("/items", extensions=ext(deadline=0.2))
        elapsed = time.monotonic() - started

    assert (script.count, response.status_code) == (1, 503)
    assert elapsed < 0.1


async def test_retry_raises_at_once_when_the_backoff_would_pass_the_deadline() -> None:
    policy = RetryPolicy(max_retries=2, backoff=1.0, max_backoff=1.0)
    script = Script(httpx.ConnectError, 200)
    # rng=Random(0) draws 0.84 of the first backoff: more than the 0.2 s left.
    async with client_over(retrying(script, policy)) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectError):
            await client.get("/items", extensions=ext(deadline=0.2))

    assert script.count == 1
    assert time.monotonic() - started < 0.1


async def test_retry_cuts_each_try_timeout_to_the_time_left() -> None:
    script = Script(retry_after(503, "0.05"), 200)
    async with client_over(retrying(script)) as client:
        await client.get("/items", extensions=ext(deadline=0.5))

    first, second = script.timeouts
    assert set(first) == {"connect", "read", "write", "pool"}
    assert all(0 < value <= 0.5 for value in first.values())
    assert all(0 < value <= first["read"] - 0.04 for value in second.values())


async def test_retry_keeps_a_shorter_timeout_and_leaves_it_alone_without_a_deadline() -> None:
    script = Script(200)
    transport = retrying(script)
    async with httpx.AsyncClient(transport=transport, base_url=BASE,
                                 timeout=httpx.Timeout(0.1, connect=0.05)) as client:
        await client.get("/items", extensions=ext(deadline=10.0))
        await client.get("/items", extensions=ext(deadline=None))

    cut, untouched = script.timeouts
    assert cut == {"connect": 0.05, "read": 0.1, "write": 0.1, "pool": 0.1}
    assert untouched == {"connect": 0.05, "read": 0.1, "write": 0.1, "pool": 0.1}


# -- BreakerTransport and SourceHealth ----------------------------------------------------------

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def guarded(script: Script, threshold: int = 3, reset: float = 0.1
            ) -> tuple[BreakerTransport, SourceHealth]:
    health = SourceHealth(SOURCE, BreakerPolicy(threshold=threshold, reset=reset))
    return BreakerTransport(httpx.MockTransport(script), health=health), health


async def fail_times(client: httpx.AsyncClient, times: int) -> None:
    for _ in range(times):
        with contextlib.suppress(httpx.HTTPError):
            await client.get("/items", extensions=ext())


def state(health: SourceHealth) -> BreakerState:
    """The breaker's state now (a call, so that mypy does not narrow it between reads)."""
    return health.state


@pytest.mark.parametrize(
    "failure", [500, 502, 503, httpx.ConnectError, httpx.ReadTimeout, httpx.ConnectTimeout])
async def test_breaker_opens_after_threshold_consecutive_failures(failure: Answer) -> None:
    script = Script(failure)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 2)
        assert state(health) is BreakerState.CLOSED
        await fail_times(client, 1)
        assert state(health) is BreakerState.OPEN
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get("/items", extensions=ext())

    assert script.count == 3
    error = caught.value
    assert error.source == SOURCE
    assert error.retry_after is not None
    assert 0.0 <= error.retry_after <= 0.1
    assert error.extensions["code"] == "UPSTREAM_UNAVAILABLE"
    assert health.report()["breaker"] == "open"


async def test_breaker_below_threshold_stays_closed() -> None:
    script = Script(503, 503, 200)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 2)
        response = await client.get("/items", extensions=ext())

    assert (script.count, response.status_code) == (3, 200)
    assert state(health) is BreakerState.CLOSED


async def test_breaker_success_resets_the_failure_count() -> None:
    script = Script(503, 503, 200, 503, 503, 200)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 2)
        await client.get("/items", extensions=ext())
        assert health.failures == 0
        await fail_times(client, 2)
        assert state(health) is BreakerState.CLOSED
        response = await client.get("/items", extensions=ext())

    assert (script.count, response.status_code) == (6, 200)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429])
async def test_breaker_does_not_count_4xx_or_429(status: int) -> None:
    script = Script(status)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        for _ in range(5):
            assert (await client.get("/items", extensions=ext())).status_code == status

    assert script.count == 5
    assert state(health) is BreakerState.CLOSED
    assert health.failures == 0


async def test_breaker_half_open_lets_one_probe_through_and_its_success_closes() -> None:
    script = Script(503, 503, 503, 200)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 3)
        await asyncio.sleep(0.12)
        assert state(health) is BreakerState.HALF_OPEN
        script.gate = asyncio.Event()
        probe = asyncio.ensure_future(client.get("/items", extensions=ext()))
        await until(lambda: script.count == 4)
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable) as caught:
            await asyncio.wait_for(client.get("/items", extensions=ext()), 1.0)
        assert time.monotonic() - started < 0.05
        assert caught.value.source == SOURCE
        assert script.count == 4
        script.gate.set()
        assert (await probe).status_code == 200
        assert state(health) is BreakerState.CLOSED
        after = await client.get("/items", extensions=ext())

    assert after.status_code == 200
    assert script.count == 5


async def test_breaker_probe_failure_opens_again() -> None:
    script = Script(503)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 3)
        await asyncio.sleep(0.12)
        probe = await client.get("/items", extensions=ext())
        assert probe.status_code == 503
        assert state(health) is BreakerState.OPEN
        with pytest.raises(UpstreamUnavailable):
            await client.get("/items", extensions=ext())

    assert script.count == 4


async def test_breaker_cancelled_probe_lets_another_probe_through() -> None:
    script = Script(503, 503, 503, 200)
    transport, health = guarded(script)
    async with client_over(transport) as client:
        await fail_times(client, 3)
        await asyncio.sleep(0.12)
        script.gate = asyncio.Event()
        probe = asyncio.ensure_future(client.get("/items", extensions=ext()))
        await until(lambda: script.count == 4)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        script.gate.set()
        response = await client.get("/items", extensions=ext())

    assert response.status_code == 200
    assert state(health) is BreakerState.CLOSED


async def test_breaker_report_says_what_happened() -> None:
    script = Script(200, 503, httpx.ConnectError, httpx.ReadTimeout)
    transport, health = guarded(script)
    assert health.report() == {"breaker": "closed", "consecutiveFailures": 0,
                               "lastSuccess": None, "lastError": None, "lastErrorAt": None}
    async with client_over(transport) as client:
        await client.get("/items", extensions=ext())
        report = health.report()
        assert isinstance(report["lastSuccess"], str) and ISO.match(report["lastSuccess"])
        assert report["lastSuccess"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(
            health.last_success))
        assert abs((health.last_success or 0) - time.time()) < 5
        assert report["lastError"] is None

        errors = []
        for _ in range(3):
            await fail_times(client, 1)
            errors.append(health.report()["lastError"])
        report = health.report()
        await asyncio.sleep(0.12)
        later = health.report()

    assert errors == ["HTTP 503", "ConnectError", "timeout"]
    assert report["breaker"] == "open"
    assert report["consecutiveFailures"] == 3
    assert isinstance(report["lastErrorAt"], str) and ISO.match(report["lastErrorAt"])
    assert report["lastSuccess"] is not None
    assert later["breaker"] == "half-open"


# -- ConcurrencyLimitTransport ------------------------------------------------------------------


async def test_limit_keeps_at_most_limit_calls_in_flight() -> None:
    script = Script(200)
    script.gate = asyncio.Event()
    transport = ConcurrencyLimitTransport(httpx.MockTransport(script), limit=2)
    async with client_over(transport) as client:
        tasks = [asyncio.ensure_future(client.get(f"/items?n={n}", extensions=ext()))
                 for n in range(5)]
        await until(lambda: script.count == 2)
        await asyncio.sleep(0.02)  # give a third call the chance to start, if it could
        assert (script.count, script.in_flight) == (2, 2)
        script.gate.set()
        responses = await asyncio.gather(*tasks)

    assert script.count == 5
    assert script.most_in_flight == 2
    assert all(r.status_code == 200 for r in responses)


async def test_limit_frees_the_slot_of_a_failed_call() -> None:
    script = Script(httpx.ConnectError, httpx.ConnectError, 200)
    transport = ConcurrencyLimitTransport(httpx.MockTransport(script), limit=1)
    async with client_over(transport) as client:
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                await client.get("/items", extensions=ext())
        response = await asyncio.wait_for(client.get("/items", extensions=ext()), 1.0)

    assert response.status_code == 200


# -- The whole stack ----------------------------------------------------------------------------


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
    assert scope.stale[SOURCE] >= 0.0


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

