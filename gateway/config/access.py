"""``[auth]`` (API keys and ``[auth.jwt]``: who the client is) and ``[rate_limits]`` (what a
client may do a minute)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator

from gateway.config.base import MIN_HMAC_SECRET_LENGTH, Strict, check_secret

__all__ = ["ApiKey", "AuthSettings", "ClientLimits", "JwtSettings", "RateLimitSettings"]


class ApiKey(Strict):
    """One client's API key, configured by its SHA-256 (the key itself is never stored)."""

    client: str = Field(pattern=r"^[A-Za-z0-9_.:@-]{1,100}$")  # its name (logs, limits)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # `printf %s KEY | sha256sum`


class JwtSettings(Strict):
    """``[auth.jwt]``: bearer tokens signed with HS256 (a shared secret) or RS256 (a public key
    from a PEM file, a JWKS file or a JWKS URL)."""

    # The signing algorithms accepted (a token naming another is refused).
    algorithms: tuple[Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256",
                              "PS256"], ...] = Field(default=("RS256",), min_length=1)
    secret: SecretStr | None = None  # HS*: the shared secret, inline or …
    secret_env: str | None = None  # … from this environment variable
    public_key_file: str | None = None  # RS*/ES*/PS*: a PEM public key
    jwks_file: str | None = None  # or a JSON Web Key Set, from a file
    jwks_url: AnyHttpUrl | None = None  # or from a URL (cached; refetched for an unknown kid)
    issuer: str | None = None  # checked when set (`iss`)
    audience: str | None = None  # checked when set (`aud`)
    client_claim: str = "sub"  # the claim naming the client
    leeway_seconds: float = Field(default=0.0, ge=0, le=300)  # clock skew allowed on exp/nbf

    def hmac_secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The HS* secret: inline, or read from ``secret_env``; None for public keys."""
        if self.secret is not None:
            return self.secret.get_secret_value()
        if self.secret_env is not None:
            return (os.environ if environ is None else environ)[self.secret_env]
        return None

    @model_validator(mode="after")
    def _one_key(self) -> JwtSettings:
        keys = [k for k in ("secret", "secret_env", "public_key_file", "jwks_file", "jwks_url")
                if getattr(self, k) is not None]
        if len(keys) != 1:
            raise ValueError("give exactly one of secret, secret_env, public_key_file, "
                             "jwks_file and jwks_url")
        hmac = all(a.startswith("HS") for a in self.algorithms)
        if hmac != (keys[0] in ("secret", "secret_env")):
            raise ValueError("HS* algorithms take secret or secret_env; the others a public "
                             "key (public_key_file, jwks_file or jwks_url), and the two kinds "
                             "do not mix")
        return self

    @field_validator("secret")
    @classmethod
    def _strong(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None:
            check_secret(secret.get_secret_value(), MIN_HMAC_SECRET_LENGTH, "an HMAC secret")
        return secret


class AuthSettings(Strict):
    """``[auth]``: who the client is (gateway/access/auth.py). Off (anyone, anonymous) by
    default."""

    # True: a request without valid credentials is refused (401). False: credentials are
    # optional, but credentials sent and not valid are still refused.
    required: bool = False
    api_keys: tuple[ApiKey, ...] = ()  # sent as `X-API-Key: <key>`
    jwt: JwtSettings | None = None  # sent as `Authorization: Bearer <token>`

    @model_validator(mode="after")
    def _some_method(self) -> AuthSettings:
        if self.required and not self.api_keys and self.jwt is None:
            raise ValueError("required = true needs api_keys or [auth.jwt]")
        return self


class ClientLimits(Strict):
    # This client's own limits, in place of [rate_limits]' (unset: those; 0: no limit).
    requests_per_minute: int | None = Field(default=None, ge=0)
    cost_per_minute: int | None = Field(default=None, ge=0)


class RateLimitSettings(Strict):
    """``[rate_limits]``: per client and minute (gateway/access/rate_limits.py); 0 is no limit.

    A client is its authenticated identity, else (anonymous) its address."""

    requests_per_minute: int = Field(default=0, ge=0)  # GraphQL requests
    # Upstream requests: a request is admitted on its estimated cost, charged its actual calls.
    cost_per_minute: int = Field(default=0, ge=0)
    clients: dict[str, ClientLimits] = Field(default_factory=dict)  # per client overrides
    # Failed authentications (bad API key, bad token) an address may make a minute; past them
    # its requests are refused (429) before their credentials are read, good ones too: keys
    # and tokens cannot be guessed at speed.
    failed_auth_per_minute: int = Field(default=30, ge=0)
