"""CacheTransport over a scripted upstream: fresh hits, TTLs, stale answers in the grace, keys.

The layer and its store read the test's :class:`~tests.clock.ManualClock` (the ``manual``
fixture; the ``store`` fixture is on it too): entries age by ``manual.advance``, not by sleeping.
"""

from __future__ import annotations

import gzip

import httpx
import pytest

from gateway.caches.store import FORMAT, ResponseStore
from gateway.credentials import fingerprint as credential_fingerprint
from gateway.errors import UpstreamUnavailable
from gateway.upstream.cache import CachePolicy, CacheTransport, cache_key
from gateway.upstream.extensions import LANGUAGE, STALE_AGE
from tests.clock import ManualClock
from tests.upstream.scripted import BASE, SOURCE, Answer, Script, call_of, client_over, ext


def cached(
    script: Script, store: ResponseStore, *, product_ttl: float = 60.0, group_ttl: float = 60.0,
    stale_grace: float = 600.0, credential: str = "cred-a",
) -> CacheTransport:
    """The cache layer on the store's clock (the test's ManualClock)."""
    return CacheTransport(
        httpx.MockTransport(script), store=store, source=SOURCE, credential=credential,
        policy=CachePolicy(product_ttl=product_ttl, group_ttl=group_ttl, stale_grace=stale_grace),
        clock=store.clock)


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
    [(60.0, 600.0, "groups"), (600.0, 60.0, "products")],
)
async def test_cache_ttl_follows_the_freshness_extension(
    store: ResponseStore, manual: ManualClock, group_ttl: float, product_ttl: float, expired: str
) -> None:
    script = Script(200)
    transport = cached(script, store, group_ttl=group_ttl, product_ttl=product_ttl)
    async with client_over(transport) as client:
        for kind in ("groups", "products"):
            await client.get(f"/{kind}", extensions=ext(freshness=kind))
        manual.advance(61.0)
        again = {kind: await client.get(f"/{kind}", extensions=ext(freshness=kind))
                 for kind in ("groups", "products")}

    assert script.count == 3
    kept = "products" if expired == "groups" else "groups"
    assert call_of(again[expired]) == 3
    assert call_of(again[kept]) == {"groups": 1, "products": 2}[kept]  # its first answer
    assert [r.url.path for r in script.calls] == ["/groups", "/products", f"/{expired}"]


async def test_cache_without_freshness_uses_the_product_ttl(
    store: ResponseStore, manual: ManualClock
) -> None:
    script = Script(200)
    async with client_over(cached(script, store, product_ttl=60, group_ttl=600)) as client:
        await client.get("/items", extensions=ext(freshness=None))
        manual.advance(59.0)
        await client.get("/items", extensions=ext(freshness=None))
        assert script.count == 1
        manual.advance(2.0)
        await client.get("/items", extensions=ext(freshness=None))

    assert script.count == 2


async def test_cache_refetches_after_expiry(store: ResponseStore, manual: ManualClock) -> None:
    script = Script(200)
    async with client_over(cached(script, store, product_ttl=60)) as client:
        await client.get("/items", extensions=ext())
        manual.advance(59.0)
        assert call_of(await client.get("/items", extensions=ext())) == 1  # fresh for 60 s
        manual.advance(2.0)
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
    store: ResponseStore, manual: ManualClock, failure: Answer
) -> None:
    script = Script(200, failure)
    async with client_over(cached(script, store, product_ttl=60, stale_grace=600)) as client:
        await client.get("/items", extensions=ext())
        manual.advance(90.0)
        stale = await client.get("/items", extensions=ext())

    assert script.count == 2
    assert stale.status_code == 200
    assert stale.json() == {"call": 1}
    assert stale.headers["content-type"] == "application/json"
    assert stale.extensions[STALE_AGE] == 30.0  # seconds past freshness (90 s old, 60 s TTL)


@pytest.mark.parametrize("status", [503, 429])
async def test_cache_passes_a_failure_through_beyond_grace(
    store: ResponseStore, manual: ManualClock, status: int
) -> None:
    script = Script(200, status)
    async with client_over(cached(script, store, product_ttl=60, stale_grace=60)) as client:
        await client.get("/items", extensions=ext())
        manual.advance(121.0)
        failed = await client.get("/items", extensions=ext())

    assert script.count == 2
    assert (failed.status_code, call_of(failed)) == (status, 2)
    assert STALE_AGE not in failed.extensions


async def test_cache_raises_a_connect_error_beyond_grace(
    store: ResponseStore, manual: ManualClock
) -> None:
    script = Script(200, httpx.ConnectError)
    async with client_over(cached(script, store, product_ttl=60, stale_grace=60)) as client:
        await client.get("/items", extensions=ext())
        manual.advance(121.0)
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

    assert key.startswith(f"{FORMAT.decode()}:{SOURCE}:{fingerprint}:")
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
