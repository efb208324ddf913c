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
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.app import create_app
from gateway.config import Config, ConfigError, parse_config
from gateway.emulators import DEMO_TOKENS, KINDS
from gateway.serving import ServerThread
from tests.conftest import UNCACHED, RunningEmulator
from tests.leaks import SecretScan

Emulators = dict[str, RunningEmulator]
Json = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]

SOURCES = "{ sources { id } }"  # no upstream request
# Two upstream requests (caches off): one Joptic page, one CareCloud page.
TWO_CALLS = """{
  j: productGroups(first: 3, filter: {sources: ["joptic"]}) { nodes { name } }
  c: productGroups(first: 3, filter: {sources: ["carecloud"]}) { nodes { name } }
}"""
ESTIMATED_FIVE = """query ($n: Int) { productGroups(first: 2, filter: {sources: ["axim"]}) {
  nodes { products(first: $n) { nodes { sku } } } } }"""
HMAC_SECRET = "test-hmac-secret-" + "k" * 32
AUDIENCE = "catalogue-gateway"
ISSUER = "https://issuer.example.com/"


def _config(emulators: Emulators, *, cache_url: str = "memory://", **sections: Any) -> Config:
    data: dict[str, Any] = {
        "server": {"profile": "development", "cursor_secret": secrets.token_urlsafe(32)},
        "cache": {"url": cache_url, "namespace": f"t{uuid.uuid4().hex[:10]}"},
        "response_cache": {"enabled": False},
        "defaults": dict(UNCACHED),
        "sources": [{"name": k, "kind": k, "base_url": emulators[k].url,
                     "token": DEMO_TOKENS[k]} for k in KINDS],
        **sections,
    }
    return parse_config(data, origin="<test>")


@contextmanager
def _gateway(config: Config) -> Iterator[str]:
    with ServerThread({"gw": create_app(config)}) as servers:
        yield servers.urls["gw"]


def _post(base: str, scan: SecretScan, query: str | None,
          headers: Mapping[str, str] | None = None, **body: Any) -> httpx.Response:
    """POST a query (None: none, as a hash-only persisted query sends)."""
    payload = {"query": query, **body} if query is not None else body
    response = httpx.post(f"{base}/graphql", json=payload,
                          headers=dict(headers or {}), timeout=30)
    scan.seen(response.text)
    scan.seen(json.dumps(dict(response.headers)))
    return response


def _code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


def _upstream(emulators: Emulators) -> int:
    return sum(len(e.log) for e in emulators.values())


@pytest.fixture
def emulators(emulator_servers: Emulators,
              emulator: Callable[[str], RunningEmulator]) -> Emulators:
    return emulator_servers


def _token(key: Any = HMAC_SECRET, algorithm: str = "HS256", *, expires_in: float = 300,
           audience: str = AUDIENCE, issuer: str = ISSUER, subject: str = "shop",
           kid: str | None = None) -> str:
    claims = {"sub": subject, "aud": audience, "iss": issuer,
              "exp": int(time.time() + expires_in), "iat": int(time.time())}
    return jwt.encode(claims, key, algorithm=algorithm,
                      headers={"kid": kid} if kid else None)


# --- JWT bearer tokens ---------------------------------------------------------------------------


def test_jwt_hs256_refuses_missing_expired_wrong_audience_and_badly_signed_tokens(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    scan = no_secret_leaks
    tokens = {
        "valid": _token(),
        "expired": _token(expires_in=-120),
        "audience": _token(audience="someone-else"),
        "issuer": _token(issuer="https://evil.example.com/"),
        "signature": _token("another-secret-of-enough-length-" + "x" * 16),
        "garbage": "not.a.jwt",
    }
    scan.add_secret(HMAC_SECRET)
    for token in tokens.values():
        scan.add_secret(token)
    auth = {"required": True, "jwt": {"algorithms": ["HS256"], "secret": HMAC_SECRET,
                                      "audience": AUDIENCE, "issuer": ISSUER}}
    with _gateway(_config(emulators, auth=auth)) as gw:
        missing = _post(gw, scan, TWO_CALLS)
        assert missing.status_code == 401
        assert _code(missing) == "UNAUTHENTICATED"
        assert "data" not in missing.json()
        assert missing.headers["www-authenticate"].startswith("Bearer realm=")
        refusals = {}
        for name in ("expired", "audience", "issuer", "signature", "garbage"):
            response = _post(gw, scan, TWO_CALLS,
                             {"Authorization": f"Bearer {tokens[name]}"})
            assert response.status_code == 401, (name, response.text)
            assert _code(response) == "UNAUTHENTICATED"
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
            refusals[name] = response.json()["errors"][0]["message"]
        assert _upstream(emulators) == 0  # nothing refused reached a source
        assert "expired" in refusals["expired"]
        assert "audience" in refusals["audience"]
        assert "issuer" in refusals["issuer"]
        assert "signature" in refusals["signature"]

        ok = _post(gw, scan, TWO_CALLS, {"Authorization": f"Bearer {tokens['valid']}"})
        assert ok.status_code == 200, ok.text
        assert "errors" not in ok.json() and ok.json()["data"]["j"]["nodes"]


def _rsa() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem.decode()


def _jwks(key: Any, kid: str) -> Json:
    jwk: Json = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}


def test_jwt_rs256_from_a_pem_file_a_jwks_file_and_a_jwks_url(
        emulators: Emulators, no_secret_leaks: SecretScan, tmp_path: Path) -> None:
    scan = no_secret_leaks
    key, pem = _rsa()
    stranger, _ = _rsa()
    (tmp_path / "public.pem").write_text(pem)
    (tmp_path / "jwks.json").write_text(json.dumps(_jwks(key, "k1")))
    fetched: list[str] = []

    async def jwks(request: Request) -> JSONResponse:
        fetched.append(request.url.path)
        return JSONResponse(_jwks(key, "k1"))

    good = _token(key, "RS256", kid="k1")
    forged = _token(stranger, "RS256", kid="k1")
    unknown_kid = _token(stranger, "RS256", kid="k2")
    for token in (good, forged, unknown_kid):
        scan.add_secret(token)
    with ServerThread({"jwks": Starlette(routes=[Route("/jwks.json", jwks)])}) as keys:
        sources = {"public_key_file": str(tmp_path / "public.pem"),
                   "jwks_file": str(tmp_path / "jwks.json"),
                   "jwks_url": f"{keys.urls['jwks']}/jwks.json"}
        for where, value in sources.items():
            auth = {"required": True, "jwt": {"algorithms": ["RS256"], where: value,
                                              "audience": AUDIENCE, "issuer": ISSUER}}
            with _gateway(_config(emulators, auth=auth)) as gw:
                ok = _post(gw, scan, SOURCES, {"Authorization": f"Bearer {good}"})
                assert ok.status_code == 200, (where, ok.text)
                for bad in (forged, unknown_kid):
                    refused = _post(gw, scan, SOURCES, {"Authorization": f"Bearer {bad}"})
                    assert refused.status_code == 401, (where, refused.text)
                    assert _code(refused) == "UNAUTHENTICATED"
    assert fetched  # the URL's key set was really fetched


# --- API keys ------------------------------------------------------------------------------------


def test_api_keys_are_stored_hashed_and_checked(emulators: Emulators,
                                                no_secret_leaks: SecretScan) -> None:
    scan = no_secret_leaks
    key = "ak_" + secrets.token_urlsafe(24)
    scan.add_secret(key)
    auth = {"required": True,
            "api_keys": [{"client": "shop", "sha256": hashlib.sha256(key.encode()).hexdigest()}]}
    with _gateway(_config(emulators, auth=auth)) as gw:
        assert _post(gw, scan, SOURCES, {"X-API-Key": key}).status_code == 200
        bad = _post(gw, scan, SOURCES, {"X-API-Key": key + "x"})
        assert bad.status_code == 401 and _code(bad) == "UNAUTHENTICATED"
        assert "ApiKey" in bad.headers["www-authenticate"]
        missing = _post(gw, scan, SOURCES)
        assert missing.status_code == 401 and _code(missing) == "UNAUTHENTICATED"


def test_optional_auth_lets_anonymous_in_but_refuses_a_bad_key(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    scan = no_secret_leaks
    key = "ak_" + secrets.token_urlsafe(24)
    scan.add_secret(key)
    auth = {"api_keys": [{"client": "shop", "sha256": hashlib.sha256(key.encode()).hexdigest()}]}
    with _gateway(_config(emulators, auth=auth)) as gw:
        assert _post(gw, scan, SOURCES).status_code == 200
        assert _post(gw, scan, SOURCES, {"X-API-Key": "wrong"}).status_code == 401


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
    config = _config(emulators, auth=auth, rate_limits=limits, cache_url=cache_url)
    with _gateway(config) as gw:
        shop = {"X-API-Key": keys["shop"]}
        assert [_post(gw, scan, TWO_CALLS, shop).status_code for _ in range(2)] == [200, 200]
        calls = _upstream(emulators)
        refused = _post(gw, scan, TWO_CALLS, shop)
        assert refused.status_code == 429
        assert _code(refused) == "RATE_LIMITED"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert _upstream(emulators) == calls  # refused before any upstream request
        # Another client has its own window.
        assert _post(gw, scan, TWO_CALLS, {"X-API-Key": keys["batch"]}).status_code == 200
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
    with _gateway(_config(emulators, auth=auth,
                          rate_limits={"cost_per_minute": 6})) as gw:
        shop = {"X-API-Key": key}
        for _ in range(2):
            response = _post(gw, scan, ESTIMATED_FIVE, shop, variables={"n": 2})
            assert response.status_code == 200 and "errors" not in response.json()
        assert _upstream(emulators) == 2
        refused = _post(gw, scan, ESTIMATED_FIVE, shop, variables={"n": 2})
        assert refused.status_code == 429, refused.text
        assert _code(refused) == "COST_BUDGET_EXCEEDED"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert _upstream(emulators) == 2
        # Anonymous clients are counted by address, apart from "shop".
        assert _post(gw, scan, ESTIMATED_FIVE, None, variables={"n": 2}).status_code == 200


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
    with _gateway(_config(emulators, persisted=persisted)) as gw:
        refused = _post(gw, scan, TWO_CALLS)
        assert refused.status_code == 200
        assert _code(refused) == "PERSISTED_QUERY_NOT_IN_LIST"
        assert "data" not in refused.json()
        unknown = _post(gw, scan, None, extensions={"persistedQuery": {
            "version": 1, "sha256Hash": hashlib.sha256(TWO_CALLS.encode()).hexdigest()}})
        assert _code(unknown) == "PERSISTED_QUERY_NOT_IN_LIST"
        assert _upstream(emulators) == 0  # nothing unregistered reached a source

        by_text = _post(gw, scan, sources_text)
        assert by_text.json()["data"]["sources"], by_text.text
        by_id = _post(gw, scan, None, extensions={"persistedQuery": {
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
        create_app(_config(emulators, persisted={"mode": "trusted",
                                                 "operation_dirs": [str(tmp_path / "ops")]}))
    (tmp_path / "relay.json").write_text(json.dumps(["not", "a", "manifest"]))
    with pytest.raises(ConfigError, match="neither an Apollo"):
        create_app(_config(emulators, persisted={"mode": "trusted",
                                                 "manifests": [str(tmp_path / "relay.json")]}))


def test_apq_off_says_persisted_queries_are_not_supported(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    with _gateway(_config(emulators, persisted={"mode": "off"})) as gw:
        response = _post(gw, no_secret_leaks, SOURCES, extensions={
            "persistedQuery": {"version": 1,
                               "sha256Hash": hashlib.sha256(SOURCES.encode()).hexdigest()}})
        assert _code(response) == "PERSISTED_QUERY_NOT_SUPPORTED"
