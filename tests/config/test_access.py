"""``[auth]``, ``[rate_limits]``, ``[persisted]`` and ``pass_through_header``: what the
configuration accepts and refuses (every problem named, no secret in a message)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.config import ConfigError, parse_config
from gateway.upstream.cache import cache_key
from gateway.upstream.extensions import CREDENTIAL

SECRET = "access-config-test-hmac-secret-0123456789"
SOURCES = [{"name": "axim", "kind": "axim", "base_url": "https://axim.example.com",
            "token": "t1"}]


def _errors(environ: dict[str, str] | None = None, **sections: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config({"server": {"profile": "development"}, "sources": SOURCES, **sections},
                     origin="gw.toml", environ=environ or {})
    return str(caught.value)


def test_jwt_needs_exactly_one_key_of_its_algorithm_kind() -> None:
    assert "exactly one of" in _errors(auth={"jwt": {"algorithms": ["HS256"]}})
    assert "exactly one of" in _errors(auth={"jwt": {"algorithms": ["HS256"], "secret": SECRET,
                                                     "jwks_file": "k.json"}})
    mixed = _errors(auth={"jwt": {"algorithms": ["HS256"], "jwks_file": "k.json"}})
    assert "do not mix" in mixed
    short = _errors(auth={"jwt": {"algorithms": ["HS256"], "secret": "short-secret"}})
    assert "at least 32" in short and "short-secret" not in short


def test_jwt_secret_env_must_be_set_and_long_enough() -> None:
    jwt = {"algorithms": ["HS256"], "secret_env": "JWT_SECRET"}
    assert "JWT_SECRET is not set" in _errors(auth={"jwt": jwt})
    short = _errors({"JWT_SECRET": "tiny-secret"}, auth={"jwt": jwt})
    assert "at least 32" in short and "tiny-secret" not in short
    config = parse_config({"server": {"profile": "development"}, "sources": SOURCES,
                           "auth": {"jwt": jwt}}, environ={"JWT_SECRET": SECRET})
    assert config.auth.jwt is not None
    assert config.auth.jwt.hmac_secret({"JWT_SECRET": SECRET}) == SECRET
    assert SECRET not in repr(config)


def test_required_auth_needs_a_method_and_keys_are_sha256_hex() -> None:
    assert "needs api_keys" in _errors(auth={"required": True})
    bad = _errors(auth={"api_keys": [{"client": "shop", "sha256": "the-key-itself"}]})
    assert "[auth] api_keys #1 sha256: must be the key's SHA-256" in bad
    assert "the-key-itself" not in bad
    assert "[rate_limits] requests_per_minit: unknown key" in _errors(
        rate_limits={"requests_per_minit": 5})
    assert "[persisted] mode: must be one of off, apq, trusted" in _errors(
        persisted={"mode": "sometimes"})


def test_a_pass_through_header_is_a_header_name() -> None:
    sources = [{**SOURCES[0], "pass_through_header": "X Bad"}]
    with pytest.raises(ConfigError, match="pass_through_header"):
        parse_config({"server": {"profile": "development"}, "sources": sources}, environ={})


def test_a_clients_credential_keys_the_cache_and_dedup_apart() -> None:
    def key(credential: str | None) -> str:
        request = httpx.Request("GET", "https://axim.example.com/productGroup/all?page=1")
        if credential is not None:
            request.extensions[CREDENTIAL] = credential
        return cache_key("axim", "configured", request)

    assert key(None) == key(None)
    assert len({key(None), key("aaaa"), key("bbbb")}) == 3
    assert ":aaaa:" in key("aaaa") and ":configured:" in key(None)
