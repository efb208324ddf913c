"""Who the client is: API keys and JWT bearer tokens (``[auth]``), off in the demo.

* **API keys**: ``X-API-Key: <key>``. The configuration holds each key's SHA-256 (hex) and the
  client's name, never the key: a key is looked up by its digest.
* **JWT bearer tokens**: ``Authorization: Bearer <token>``, verified with pyjwt: the signature
  (HS256 with a shared secret, RS256 and kin with a PEM public key, a JWKS file, or a JWKS URL
  through :class:`jwt.PyJWKClient`, which keeps the keys and refetches for an unknown ``kid``),
  ``exp`` (required), ``nbf``, and ``iss``/``aud`` when configured. The client is the claim
  ``client_claim`` (default ``sub``).

``X-API-Key`` is read first. A request without credentials is anonymous — refused (401) when
``[auth] required`` — and one with credentials that are not valid is always refused: 401
``UNAUTHENTICATED`` with a GraphQL error body and ``WWW-Authenticate``. Messages say what was
wrong (expired, wrong audience…) and never carry the key, the token or a claim.

Example::

    auth = Authenticator(config.auth)
    client = await auth.authenticate(request.headers, address="10.0.0.7")  # or Unauthenticated
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from gateway.config import AuthSettings, JwtSettings

__all__ = ["API_KEY_HEADER", "Authenticator", "Client", "Unauthenticated"]

API_KEY_HEADER = "x-api-key"
REALM = "catalogue-gateway"
MAX_CREDENTIAL_LENGTH = 8192  # longer keys or tokens are refused unread
logger = logging.getLogger("gateway.auth")


@dataclass(frozen=True, slots=True)
class Client:
    """The client of one request: ``id`` its authenticated name ("" when anonymous);
    ``rate_key`` what its budgets count by: its identity, else (anonymous) its address.

    Identities are namespaced by how the client authenticated (``key:<name>`` for an API key,
    ``jwt:<name>`` for a bearer token's subject): a token naming the subject ``shop`` is not the
    API-key client ``shop``, and shares neither its budgets nor its cached answers. A bearer
    token's client carries when the token expires (``expires_at``, wall clock), an API-key
    client the digest of its key (``key``): a subscription ends when either stops being valid.
    """

    id: str
    rate_key: str
    expires_at: float | None = None
    key: str | None = None

    @property
    def identity(self) -> str:
        """The namespaced identity ("" when anonymous): what keeps clients' answers apart."""
        return self.rate_key if self.id else ""


class Unauthenticated(Exception):
    """No valid credentials: 401, with the challenge for ``WWW-Authenticate``."""

    def __init__(self, message: str, challenge: str) -> None:
        super().__init__(message)
        self.message = message
        self.challenge = challenge


class Authenticator:
    def __init__(self, settings: AuthSettings, *, environ: Mapping[str, str] | None = None
                 ) -> None:
        self.settings = settings
        self._keys = {key.sha256: key.client for key in settings.api_keys}
        self._jwt = _JwtVerifier(settings.jwt, environ) if settings.jwt is not None else None

    @property
    def enabled(self) -> bool:
        return bool(self._keys) or self._jwt is not None

    def challenge(self, error: str | None = None) -> str:
        """The ``WWW-Authenticate`` value: one challenge per configured method."""
        challenges = []
        if self._jwt is not None:
            challenges.append(f'Bearer realm="{REALM}"'
                              + (f', error="invalid_token", error_description="{error}"'
                                 if error else ""))
        if self._keys:
            challenges.append(f'ApiKey realm="{REALM}", header="X-API-Key"')
        return ", ".join(challenges)

    async def authenticate(self, headers: Mapping[str, str], *, address: str) -> Client:
        """The request's client, or :class:`Unauthenticated`."""
        anonymous = Client("", f"address:{address}")
        if not self.enabled:
            return anonymous
        key = headers.get(API_KEY_HEADER)
        if key is not None and self._keys:
            return self._api_key(key)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if self._jwt is not None and scheme.lower() == "bearer" and token.strip():
            return await self._bearer(token.strip())
        if self.settings.required:
            raise Unauthenticated("authentication is required: send an API key (X-API-Key) or "
                                  "a bearer token (Authorization: Bearer …)"
                                  if self._keys and self._jwt else
                                  "authentication is required: send an API key (X-API-Key)"
                                  if self._keys else
                                  "authentication is required: send a bearer token "
                                  "(Authorization: Bearer …)", self.challenge())
        return anonymous

    def _api_key(self, key: str) -> Client:
        client = None
        if len(key) <= MAX_CREDENTIAL_LENGTH:
            client = self._keys.get(hashlib.sha256(key.strip().encode()).hexdigest())
        digest = hashlib.sha256(key.strip().encode()).hexdigest()
        if client is None:
            raise Unauthenticated("the API key is not valid", self.challenge())
        return Client(client, f"key:{client}", key=digest)

    async def _bearer(self, token: str) -> Client:
        assert self._jwt is not None
        if len(token) > MAX_CREDENTIAL_LENGTH:
            raise Unauthenticated("the bearer token is not valid",
                                  self.challenge("the token is not valid"))
        try:
            client, expires_at = await self._jwt.client(token)
        except _Refused as exc:
            raise Unauthenticated(f"the bearer token {exc.why}",
                                  self.challenge(f"the token {exc.why}")) from None
        return Client(client, f"jwt:{client}", expires_at=expires_at)

    def still_valid(self, client: Client, now: float) -> str | None:
        """Why ``client``'s credentials no longer hold at ``now`` (wall clock), or None: its
        token expired, or its API key is no longer configured."""
        if client.expires_at is not None and now >= client.expires_at:
            return "the bearer token has expired"
        if client.key is not None and client.key not in self._keys:
            return "the API key is no longer valid"
        return None


class _Refused(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _JwtVerifier:
    """Verifies a token against the configured key(s) and claims; the client's name."""

    def __init__(self, settings: JwtSettings, environ: Mapping[str, str] | None) -> None:
        self.settings = settings
        self._key: Any = settings.hmac_secret(environ)
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_client: jwt.PyJWKClient | None = None
        if settings.public_key_file is not None:
            self._key = Path(settings.public_key_file).read_text(encoding="utf-8")
        elif settings.jwks_file is not None:
            self._jwks = jwt.PyJWKSet.from_json(
                Path(settings.jwks_file).read_text(encoding="utf-8"))
        elif settings.jwks_url is not None:
            # Keys kept for 5 minutes; an unknown kid refetches (a rotated key works at once).
            self._jwks_client = jwt.PyJWKClient(str(settings.jwks_url), cache_keys=True,
                                                lifespan=300, timeout=5)

    async def client(self, token: str) -> tuple[str, float]:
        """The client a valid token names, and when the token expires (``exp`` plus the
        leeway allowed)."""
        settings = self.settings
        key = await self._signing_key(token)
        required = ["exp", settings.client_claim]
        required += [name for name, value in (("iss", settings.issuer),
                                              ("aud", settings.audience)) if value]
        try:
            claims = jwt.decode(token, key, algorithms=list(settings.algorithms),
                                audience=settings.audience, issuer=settings.issuer,
                                leeway=settings.leeway_seconds,
                                options={"require": required,
                                         "verify_aud": settings.audience is not None})
        except jwt.ExpiredSignatureError:
            raise _Refused("has expired") from None
        except jwt.ImmatureSignatureError:
            raise _Refused("is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise _Refused("is not for this audience") from None
        except jwt.InvalidIssuerError:
            raise _Refused("has another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _Refused(f"lacks the claim {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise _Refused("has a signature that does not verify") from None
        except jwt.InvalidTokenError:
            raise _Refused("is not valid") from None
        client = claims.get(settings.client_claim)
        if not isinstance(client, str) or not client or len(client) > 200:
            raise _Refused(f"names no client in its claim {settings.client_claim!r}")
        return client, float(claims["exp"]) + settings.leeway_seconds

    async def _signing_key(self, token: str) -> Any:
        if self._jwks_client is not None:
            try:
                # PyJWKClient fetches with urllib, blocking: off the event loop.
                return (await asyncio.to_thread(self._jwks_client.get_signing_key_from_jwt,
                                                token)).key
            except jwt.PyJWKClientConnectionError as exc:
                logger.warning("JWKS fetch failed: %s", type(exc).__name__)
                raise _Refused("could not be verified (the key set is unreachable)") from None
            except (jwt.PyJWKClientError, jwt.InvalidTokenError):
                raise _Refused("is not signed by a known key") from None
        if self._jwks is not None:
            try:
                kid = jwt.get_unverified_header(token).get("kid")
            except jwt.InvalidTokenError:
                raise _Refused("is not valid") from None
            keys = [k for k in self._jwks.keys if kid is None or k.key_id == kid]
            if not keys:
                raise _Refused("is not signed by a known key")
            return keys[0].key
        return self._key
