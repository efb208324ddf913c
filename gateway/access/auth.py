"""Who the client is: API keys and JWT bearer tokens (``[auth]``), off in the demo.

* **API keys**: ``X-API-Key: <key>``. The configuration holds each key's SHA-256 (hex) and the
  client's name, never the key: a key is looked up by its digest.
* **JWT bearer tokens**: ``Authorization: Bearer <token>``, verified with pyjwt: the signature
  (HS256 with a shared secret, RS256 and kin with a PEM public key, a JWKS file, or a JWKS URL
  whose keys :class:`_RemoteKeySet` keeps: a known ``kid`` never waits for the URL, an unknown
  one refetches at most once per cooldown), ``exp`` (required), ``nbf``, and ``iss``/``aud``
  when configured. The client is the claim ``client_claim`` (default ``sub``).

``X-API-Key`` is read first. A request without credentials is anonymous — refused (401) when
``[auth] required`` — and one with credentials that are not valid is always refused: 401
``UNAUTHENTICATED`` with a GraphQL error body and ``WWW-Authenticate``. Messages say what was
wrong (expired, wrong audience…) and never carry the key, the token or a claim.

Example::

    auth = Authenticator(config.auth, clock=SYSTEM_CLOCK)
    client = await auth.authenticate(request.headers, address="10.0.0.7")  # or Unauthenticated
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from gateway.clock import SYSTEM_CLOCK, Clock
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
    def __init__(self, settings: AuthSettings, *, environ: Mapping[str, str] | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self._keys = {key.sha256: key.client for key in settings.api_keys}
        self._jwt = (_JwtVerifier(settings.jwt, environ, clock) if settings.jwt is not None
                     else None)

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
        if len(key) > MAX_CREDENTIAL_LENGTH:
            raise Unauthenticated("the API key is not valid", self.challenge())
        digest = hashlib.sha256(key.strip().encode()).hexdigest()
        client = self._keys.get(digest)
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


# A JWKS URL's keys (_RemoteKeySet): a fetch takes at most this long in all; an unknown kid
# fetches again at most once per cooldown; keys older than the lifespan are refetched in the
# background; a key set larger than this is refused.
JWKS_FETCH_TIMEOUT_SECONDS = 5.0
JWKS_COOLDOWN_SECONDS = 30.0
JWKS_LIFESPAN_SECONDS = 300.0
JWKS_MAX_BYTES = 1_000_000
UNKNOWN_KEY = "is not signed by a known key"
UNREACHABLE = "could not be verified (the key set is unreachable)"


class _RemoteKeySet:
    """The keys of a JWKS URL by ``kid``, as of its last fetch: a token whose key is known never
    waits for the URL, and a URL that hangs holds one fetch, never a thread or a queue.

    * A known ``kid`` is answered at once; once the keys are older than
      :data:`JWKS_LIFESPAN_SECONDS`, they are refetched in the background meanwhile.
    * An unknown ``kid`` starts a fetch and waits for it (a rotated key works at once), unless a
      fetch is in flight or one ended less than :data:`JWKS_COOLDOWN_SECONDS` ago: then it is
      refused at once. Made-up kids cost the URL one fetch per cooldown.
    * Until a fetch has succeeded (the gateway just started: no key is known), tokens wait for
      the fetch in flight rather than being refused while it loads.

    One fetch at a time, :data:`JWKS_FETCH_TIMEOUT_SECONDS` at most, with httpx on the event
    loop. One that fails keeps the keys known before, and is logged without the URL (its path
    or query may hold a secret); the token that waited for it could not be verified.
    """

    def __init__(self, url: str, *, clock: Clock) -> None:
        self._url = url
        self._clock = clock
        self._keys: list[jwt.PyJWK] = []
        self._loaded = False  # a fetch has succeeded
        self._failed = False  # the last fetch failed
        self._fetched_at = -math.inf  # the last success (clock.monotonic)
        self._ended_at = -math.inf  # the last fetch's end, success or not
        self._fetch: asyncio.Task[None] | None = None

    async def key(self, kid: str | None) -> Any:
        """The key of ``kid`` (None: the set's first), or :class:`_Refused`."""
        now = self._clock.monotonic()
        key = self._find(kid)
        if key is not None:
            if now - self._fetched_at >= JWKS_LIFESPAN_SECONDS:
                self._start(now)  # in the background: the known key serves meanwhile
            return key.key
        fetch = self._fetch if not self._loaded else None
        if self._fetch is None:
            fetch = self._start(now)
        if fetch is None:  # in flight (keys known), or within the cooldown
            raise _Refused(UNREACHABLE if self._failed and self._fetch is None else UNKNOWN_KEY)
        await asyncio.shield(fetch)  # a client that leaves does not stop the fetch
        if self._failed:
            raise _Refused(UNREACHABLE)
        key = self._find(kid)
        if key is None:
            raise _Refused(UNKNOWN_KEY)
        return key.key

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        return next((k for k in self._keys if kid is None or k.key_id == kid), None)

    def _start(self, now: float) -> asyncio.Task[None] | None:
        """A new fetch, unless one is in flight or the last ended within the cooldown."""
        if self._fetch is not None or now - self._ended_at < JWKS_COOLDOWN_SECONDS:
            return None
        self._fetch = asyncio.create_task(self._refetch(), name="jwks fetch")
        return self._fetch

    async def _refetch(self) -> None:
        try:
            async with asyncio.timeout(JWKS_FETCH_TIMEOUT_SECONDS):
                keys = await self._get()
        except Exception as exc:
            status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
            logger.warning("JWKS fetch failed: %s%s", type(exc).__name__,
                           f" (HTTP {status})" if status else "",
                           extra={"jwks_host": urlsplit(self._url).hostname})
            self._failed = True
        else:
            self._keys, self._loaded, self._failed = keys, True, False
            self._fetched_at = self._clock.monotonic()
        finally:
            self._ended_at = self._clock.monotonic()
            self._fetch = None

    async def _get(self) -> list[jwt.PyJWK]:
        # Straight to a transport, as the upstream client sends (gateway/upstream/client.py):
        # httpx's client would log the URL, and with it any secret of its path or query.
        request = httpx.Request("GET", self._url, headers={"Accept": "application/json"},
                                extensions={"timeout": httpx.Timeout(
                                    JWKS_FETCH_TIMEOUT_SECONDS).as_dict()})
        body = bytearray()
        async with httpx.AsyncHTTPTransport() as transport:
            response = await transport.handle_async_request(request)
            try:
                response.request = request
                response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > JWKS_MAX_BYTES:
                        raise ValueError("the key set is too large")
            finally:
                await response.aclose()
        keys = jwt.PyJWKSet.from_dict(json.loads(body)).keys
        return [k for k in keys if k.public_key_use in ("sig", None)]


class _JwtVerifier:
    """Verifies a token against the configured key(s) and claims; the client's name."""

    def __init__(self, settings: JwtSettings, environ: Mapping[str, str] | None,
                 clock: Clock) -> None:
        self.settings = settings
        self._key: Any = settings.hmac_secret(environ)
        self._jwks: jwt.PyJWKSet | None = None
        self._remote: _RemoteKeySet | None = None
        if settings.public_key_file is not None:
            self._key = Path(settings.public_key_file).read_text(encoding="utf-8")
        elif settings.jwks_file is not None:
            self._jwks = jwt.PyJWKSet.from_json(
                Path(settings.jwks_file).read_text(encoding="utf-8"))
        elif settings.jwks_url is not None:
            self._remote = _RemoteKeySet(str(settings.jwks_url), clock=clock)

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
        if self._remote is None and self._jwks is None:
            return self._key
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise _Refused("is not valid") from None
        if kid is not None and not isinstance(kid, str):
            raise _Refused("is not valid")
        if self._remote is not None:
            return await self._remote.key(kid)
        assert self._jwks is not None
        keys = [k for k in self._jwks.keys if kid is None or k.key_id == kid]
        if not keys:
            raise _Refused(UNKNOWN_KEY)
        return keys[0].key
