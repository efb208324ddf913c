"""Client authentication, per-client rate limits and cost budgets, and trusted documents, over
real sockets with the emulators (issue 15).

Each test builds its own gateway (caches off, so upstream requests are what the query makes),
reads what the upstreams received from the emulators' logs, and runs under
``no_secret_leaks`` with every key, token and secret it configures added to the scan.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.config import ConfigError
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from tests.conftest import RunningEmulator
from tests.edge.access_setup import (
    AUDIENCE,
    HMAC_SECRET,
    ISSUER,
    SOURCES,
    first_code,
    key_set,
    rsa_key,
    served,
    signed_token,
    uncached_config,
)
from tests.helpers import post
from tests.leaks import SecretScan

Emulators = dict[str, RunningEmulator]
Json = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]

# Two upstream requests (caches off): one Joptic page, one CareCloud page.
TWO_CALLS = """{
  j: productGroups(first: 3, filter: {sources: ["joptic"]}) { nodes { name } }
  c: productGroups(first: 3, filter: {sources: ["carecloud"]}) { nodes { name } }
}"""
ESTIMATED_FIVE = """query ($n: Int) { productGroups(first: 2, filter: {sources: ["axim"]}) {
  nodes { products(first: $n) { nodes { sku } } } } }"""


def _upstream(emulators: Emulators) -> int:
    return sum(len(e.log) for e in emulators.values())


@pytest.fixture
def emulators(emulator_servers: Emulators,
              emulator: Callable[[str], RunningEmulator]) -> Emulators:
    return emulator_servers


# --- JWT bearer tokens ---------------------------------------------------------------------------


def test_jwt_hs256_refuses_missing_expired_wrong_audience_and_badly_signed_tokens(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    scan = no_secret_leaks
    tokens = {
        "valid": signed_token(),
        "expired": signed_token(expires_in=-120),
        "audience": signed_token(audience="someone-else"),
        "issuer": signed_token(issuer="https://evil.example.com/"),
        "signature": signed_token("another-secret-of-enough-length-" + "x" * 16),
        "garbage": "not.a.jwt",
    }
    scan.add_secret(HMAC_SECRET)
    for token in tokens.values():
        scan.add_secret(token)
    auth = {"required": True, "jwt": {"algorithms": ["HS256"], "secret": HMAC_SECRET,
                                      "audience": AUDIENCE, "issuer": ISSUER}}
    with served(uncached_config(emulators, auth=auth)) as gw:
        missing = post(gw, TWO_CALLS, scan=scan)
        assert missing.status_code == 401
        assert first_code(missing) == "UNAUTHENTICATED"
        assert "data" not in missing.json()
        assert missing.headers["www-authenticate"].startswith("Bearer realm=")
        refusals = {}
        for name in ("expired", "audience", "issuer", "signature", "garbage"):
            response = post(gw, TWO_CALLS, headers={"Authorization": f"Bearer {tokens[name]}"},
                            scan=scan)
            assert response.status_code == 401, (name, response.text)
            assert first_code(response) == "UNAUTHENTICATED"
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
            refusals[name] = response.json()["errors"][0]["message"]
        assert _upstream(emulators) == 0  # nothing refused reached a source
        assert "expired" in refusals["expired"]
        assert "audience" in refusals["audience"]
        assert "issuer" in refusals["issuer"]
        assert "signature" in refusals["signature"]

        ok = post(gw, TWO_CALLS, headers={"Authorization": f"Bearer {tokens['valid']}"}, scan=scan)
        assert ok.status_code == 200, ok.text
        assert "errors" not in ok.json() and ok.json()["data"]["j"]["nodes"]


def test_jwt_rs256_from_a_pem_file_a_jwks_file_and_a_jwks_url(
        emulators: Emulators, no_secret_leaks: SecretScan, tmp_path: Path) -> None:
    scan = no_secret_leaks
    key, pem = rsa_key()
    stranger, _ = rsa_key()
    (tmp_path / "public.pem").write_text(pem)
    (tmp_path / "jwks.json").write_text(json.dumps(key_set(key, "k1")))
    fetched: list[str] = []

    async def jwks(request: Request) -> JSONResponse:
        fetched.append(request.url.path)
        return JSONResponse(key_set(key, "k1"))

    good = signed_token(key, "RS256", kid="k1")
    forged = signed_token(stranger, "RS256", kid="k1")
    unknown_kid = signed_token(stranger, "RS256", kid="k2")
    for token in (good, forged, unknown_kid):
        scan.add_secret(token)
    with ServerThread({"jwks": Starlette(routes=[Route("/jwks.json", jwks)])}) as keys:
        sources = {"public_key_file": str(tmp_path / "public.pem"),
                   "jwks_file": str(tmp_path / "jwks.json"),
                   "jwks_url": f"{keys.urls['jwks']}/jwks.json"}
        for where, value in sources.items():
            auth = {"required": True, "jwt": {"algorithms": ["RS256"], where: value,
                                              "audience": AUDIENCE, "issuer": ISSUER}}
            with served(uncached_config(emulators, auth=auth)) as gw:
                ok = post(gw, SOURCES, headers={"Authorization": f"Bearer {good}"}, scan=scan)
                assert ok.status_code == 200, (where, ok.text)
                for bad in (forged, unknown_kid):
                    refused = post(gw, SOURCES, headers={"Authorization": f"Bearer {bad}"},
                                   scan=scan)
                    assert refused.status_code == 401, (where, refused.text)
                    assert first_code(refused) == "UNAUTHENTICATED"
    assert fetched  # the URL's key set was really fetched


# --- API keys ------------------------------------------------------------------------------------


def test_api_keys_are_stored_hashed_and_checked(emulators: Emulators,
                                                no_secret_leaks: SecretScan) -> None:
    scan = no_secret_leaks
    key = "ak_" + secrets.token_urlsafe(24)
    scan.add_secret(key)
    auth = {"required": True,
            "api_keys": [{"client": "shop", "sha256": hashlib.sha256(key.encode()).hexdigest()}]}
    with served(uncached_config(emulators, auth=auth)) as gw:
        assert post(gw, SOURCES, headers={"X-API-Key": key}, scan=scan).status_code == 200
        bad = post(gw, SOURCES, headers={"X-API-Key": key + "x"}, scan=scan)
        assert bad.status_code == 401 and first_code(bad) == "UNAUTHENTICATED"
        assert "ApiKey" in bad.headers["www-authenticate"]
        missing = post(gw, SOURCES, scan=scan)
        assert missing.status_code == 401 and first_code(missing) == "UNAUTHENTICATED"


def test_optional_auth_lets_anonymous_in_but_refuses_a_bad_key(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    scan = no_secret_leaks
    key = "ak_" + secrets.token_urlsafe(24)
    scan.add_secret(key)
    auth = {"api_keys": [{"client": "shop", "sha256": hashlib.sha256(key.encode()).hexdigest()}]}
    with served(uncached_config(emulators, auth=auth)) as gw:
        assert post(gw, SOURCES, scan=scan).status_code == 200
        assert post(gw, SOURCES, headers={"X-API-Key": "wrong"}, scan=scan).status_code == 401


# --- rate limits and cost budgets ----------------------------------------------------------------


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_client_over_its_request_rate_gets_429_with_retry_after(
        emulators: Emulators, no_secret_leaks: SecretScan, redis_url: str, store: str) -> None:
    scan = no_secret_leaks
    keys = {"shop": "ak_" + secrets.token_urlsafe(24), "batch": "ak_" + secrets.token_urlsafe(24)}
    for key in keys.values():
        scan.add_secret(key)
    auth = {"required": True, "api_keys": [
        {"client": c, "sha256": hashlib.sha256(k.encode()).hexdigest()} for c, k in keys.items()]}
    limits = {"requests_per_minute": 100, "clients": {"shop": {"requests_per_minute": 2}}}
    cache_url = redis_url if store == "redis" else "memory://"
    config = uncached_config(emulators, auth=auth, rate_limits=limits, cache_url=cache_url)
    with served(config) as gw:
        shop = {"X-API-Key": keys["shop"]}
        assert [post(gw, TWO_CALLS, headers=shop, scan=scan).status_code
                for _ in range(2)] == [200, 200]
        calls = _upstream(emulators)
        refused = post(gw, TWO_CALLS, headers=shop, scan=scan)
        assert refused.status_code == 429
        assert first_code(refused) == "RATE_LIMITED"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert _upstream(emulators) == calls  # refused before any upstream request
        # Another client has its own window.
        batch = {"X-API-Key": keys["batch"]}
        assert post(gw, TWO_CALLS, headers=batch, scan=scan).status_code == 200
    if store == "redis":  # the counters are in Redis, where every gateway process sees them
        with redis.Redis.from_url(redis_url) as client:
            assert client.keys(f"{config.cache.namespace}:limits*")


def test_cost_budget_admits_on_the_estimate_and_charges_the_actual_upstream_requests(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    """ESTIMATED_FIVE is priced at 5 upstream requests (its product pages' size is a variable,
    so the cost rule prices the largest) and makes 1 (the look-ahead folds it into one Axim
    call): a budget of 6 admits it twice (5 <= 6, then 5 <= 5 left) and charges 1 each, so the
    third (5 > 4 left) is refused — were requests charged their estimate, the second would be."""
    scan = no_secret_leaks
    key = "ak_" + secrets.token_urlsafe(24)
    scan.add_secret(key)
    auth = {"api_keys": [{"client": "shop", "sha256": hashlib.sha256(key.encode()).hexdigest()}]}
    with served(uncached_config(emulators, auth=auth,
                          rate_limits={"cost_per_minute": 6})) as gw:
        shop = {"X-API-Key": key}
        for _ in range(2):
            response = post(gw, ESTIMATED_FIVE, {"n": 2}, shop, scan=scan)
            assert response.status_code == 200 and "errors" not in response.json()
        assert _upstream(emulators) == 2
        refused = post(gw, ESTIMATED_FIVE, {"n": 2}, shop, scan=scan)
        assert refused.status_code == 429, refused.text
        assert first_code(refused) == "COST_BUDGET_EXCEEDED"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert _upstream(emulators) == 2
        # Anonymous clients are counted by address, apart from "shop".
        assert post(gw, ESTIMATED_FIVE, {"n": 2}, scan=scan).status_code == 200


# --- trusted documents ---------------------------------------------------------------------------


def test_trusted_mode_runs_only_registered_operations(
        emulators: Emulators, no_secret_leaks: SecretScan, tmp_path: Path) -> None:
    scan = no_secret_leaks
    apollo_body = '{ productGroups(first: 2, filter: {sources: ["joptic"]}) { nodes { name } } }'
    relay_body = '{ productGroups(first: 1, filter: {sources: ["axim"]}) { nodes { name } } }'
    (tmp_path / "apollo.json").write_text(json.dumps({
        "format": "apollo-persisted-query-manifest", "version": 1, "operations": [
            {"id": hashlib.sha256(apollo_body.encode()).hexdigest(), "name": "Two",
             "type": "query", "body": apollo_body}]}))
    (tmp_path / "relay.json").write_text(json.dumps({"relay-7f3a": relay_body}))
    persisted = {"mode": "trusted", "operation_dirs": [str(ROOT / "schema" / "operations")],
                 "manifests": [str(tmp_path / "apollo.json"), str(tmp_path / "relay.json")]}
    sources_text = (ROOT / "schema" / "operations" / "sources.graphql").read_text()
    with served(uncached_config(emulators, persisted=persisted)) as gw:
        refused = post(gw, TWO_CALLS, scan=scan)
        assert refused.status_code == 200
        assert first_code(refused) == "PERSISTED_QUERY_NOT_IN_LIST"
        assert "data" not in refused.json()
        unknown = post(gw, scan=scan, extensions={"persistedQuery": {
            "version": 1, "sha256Hash": hashlib.sha256(TWO_CALLS.encode()).hexdigest()}})
        assert first_code(unknown) == "PERSISTED_QUERY_NOT_IN_LIST"
        assert _upstream(emulators) == 0  # nothing unregistered reached a source

        by_text = post(gw, sources_text, scan=scan)
        assert by_text.json()["data"]["sources"], by_text.text
        by_id = post(gw, scan=scan, extensions={"persistedQuery": {
            "version": 1, "sha256Hash": hashlib.sha256(apollo_body.encode()).hexdigest()}})
        assert len(by_id.json()["data"]["productGroups"]["nodes"]) == 2, by_id.text
        relay = httpx.get(f"{gw}/graphql", params={"extensions": json.dumps(
            {"persistedQuery": {"version": 1, "sha256Hash": "relay-7f3a"}})}, timeout=30)
        scan.seen(relay.text)
        assert len(relay.json()["data"]["productGroups"]["nodes"]) == 1, relay.text


def test_trusted_documents_that_do_not_validate_stop_the_start(
        emulators: Emulators, tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "bad.graphql").write_text("{ noSuchField }")
    with pytest.raises(ConfigError, match=r"bad\.graphql"):
        create_app(uncached_config(emulators, persisted={"mode": "trusted",
                                                 "operation_dirs": [str(tmp_path / "ops")]}))
    (tmp_path / "relay.json").write_text(json.dumps(["not", "a", "manifest"]))
    with pytest.raises(ConfigError, match="neither an Apollo"):
        create_app(uncached_config(emulators, persisted={"mode": "trusted",
                                                 "manifests": [str(tmp_path / "relay.json")]}))


def test_apq_off_says_persisted_queries_are_not_supported(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    with served(uncached_config(emulators, persisted={"mode": "off"})) as gw:
        response = post(gw, SOURCES, scan=no_secret_leaks, extensions={
            "persistedQuery": {"version": 1,
                               "sha256Hash": hashlib.sha256(SOURCES.encode()).hexdigest()}})
        assert first_code(response) == "PERSISTED_QUERY_NOT_SUPPORTED"
