"""What the access-control tests set up: a gateway over the session's emulators with its caches
off (so upstream requests are what the query makes), served from a thread, and the JWTs and
key sets its clients and issuers use."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.config import Config, parse_config
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS, KINDS
from tests.conftest import UNCACHED, RunningEmulator

Emulators = dict[str, RunningEmulator]
Json = dict[str, Any]

SOURCES = "{ sources { id } }"  # no upstream request
HMAC_SECRET = "test-hmac-secret-" + "k" * 32
AUDIENCE = "catalogue-gateway"
ISSUER = "https://issuer.example.com/"


def uncached_config(emulators: Emulators, *, cache_url: str = "memory://", **sections: Any
                    ) -> Config:
    """The configuration over ``emulators``: caches off, ``sections`` as given."""
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
def served(config: Config) -> Iterator[str]:
    """The gateway for ``config`` served from a thread; yields its base URL."""
    with ServerThread({"gw": create_app(config)}) as servers:
        yield servers.urls["gw"]


def first_code(response: httpx.Response) -> str:
    """The code of the answer's first error."""
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


def signed_token(key: Any = HMAC_SECRET, algorithm: str = "HS256", *, expires_in: float = 300,
                 audience: str = AUDIENCE, issuer: str = ISSUER, subject: str = "shop",
                 kid: str | None = None) -> str:
    """A JWT of ``subject`` for this audience and issuer, signed with ``key``."""
    claims = {"sub": subject, "aud": audience, "iss": issuer,
              "exp": int(time.time() + expires_in), "iat": int(time.time())}
    return jwt.encode(claims, key, algorithm=algorithm,
                      headers={"kid": kid} if kid else None)


def rsa_key() -> tuple[Any, str]:
    """A new RSA private key, and its public key in PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem.decode()


def key_set(key: Any, kid: str) -> Json:
    """The JWKS of ``key``'s public key, as ``kid``."""
    jwk: Json = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}
