"""``[server]``: where the gateway listens, what it tells a stranger, its deadlines, and the
profiles (production, development) that set the defaults of the rest."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.config.base import MIN_SECRET_LENGTH, Strict, check_secret

__all__ = ["PROFILE_DEFAULTS", "Profile", "ServerSettings"]


Profile = Literal["production", "development"]

# What a profile turns on when the file does not say (docs/operations.md, "Running in production").
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "production": {"graphiql": False, "introspection": False, "field_suggestions": False,
                   "readyz_detail": False, "csrf_prevention": True, "cost_extension": "off"},
    "development": {"graphiql": True, "introspection": True, "field_suggestions": True,
                    "readyz_detail": True, "csrf_prevention": False, "cost_extension": "header"},
}


class ServerSettings(Strict):
    # "production" (the default, what `serve` runs) keeps everything below off that tells a
    # stranger about the schema or the sources, and needs a cursor secret; "development" (the
    # demo) turns them on. A key set in the file wins over its profile's default.
    profile: Profile = "production"
    host: str = "127.0.0.1"  # the interface to listen on (0.0.0.0: every one)
    port: int = Field(default=8000, ge=0, le=65535)  # 0: any free port
    # Pages whose scripts may call the gateway (CORS): exact origins, and a pattern of more.
    cors_origins: tuple[str, ...] = ()
    cors_origin_regex: str | None = None
    graphiql: bool = False  # the playground on a browser GET of /graphql
    introspection: bool = False  # __schema and __type queries
    field_suggestions: bool = False  # "Did you mean …?" in error messages
    readyz_detail: bool = False  # /readyz reports each source's breaker, not only ready/unready
    # A GET query must carry a header a simple cross-site request cannot set (as Apollo Server's
    # csrfPrevention): Apollo-Require-Preflight, X-Apollo-Operation-Name, or a Content-Type
    # other than the three a form can send.
    csrf_prevention: bool = True
    # A client must send a request's headers, and then its body, within these (else 408).
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    playground_assets: str | None = None  # GraphiQL's files (default: build/playground/...)
    federation: bool = False  # serve the Apollo Federation 2 subgraph schema
    max_body_bytes: int = Field(default=1_000_000, ge=1024)  # largest POST body accepted
    # Idle keep-alive connections are kept longer than clients and load balancers keep theirs
    # (httpx 5 s, most balancers 60 s): then the client, never the server, closes an idle
    # connection, and no request is sent on a connection the server is just closing.
    keep_alive_seconds: float = Field(default=75.0, gt=0, le=3600)
    # Overall deadline of one GraphQL request: retries and slow sources stop within it.
    request_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    # One log line per GraphQL request (request id, operation, document hash, status,
    # duration, upstream requests and cache hits per source, error codes): JSON unless stderr
    # is a terminal ([logging] format). The demo turns it on.
    access_log: bool = False
    # What a request costs in `extensions.cost` of its answer: "off", "header" (when the request
    # sends `X-Gateway-Cost: 1`) or "always". Development: header; production: off.
    cost_extension: Literal["off", "header", "always"] = "off"
    # On SIGTERM /readyz answers 503 this long while requests are still served (so a load
    # balancer stops sending new ones), then the server stops accepting connections…
    drain_seconds: float = Field(default=5.0, ge=0, le=600)
    # …and requests in flight get this long to finish before they are cut off.
    grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Proxies (IPs or CIDRs) whose X-Forwarded-For / X-Forwarded-Proto are believed: a request
    # from one of them is the client the header names. Empty: no proxy is trusted and the
    # headers are ignored, so a client cannot pick the address it is rate-limited by.
    forwarded_allow_ips: tuple[str, ...] = ()
    # Known query operations run as compiled plans (gateway/graph/planner.py); false:
    # graphql-core executes every operation.
    compiled_execution: bool = True
    # Signs cursors (HMAC-SHA256), so clients page only from positions the gateway handed out.
    # Required by the production profile; unset in development: a random secret of the process
    # (cursors die with it, and differ between workers).
    cursor_secret: SecretStr | None = None
    # …or the environment variable that holds it (parse_config reads it into cursor_secret).
    cursor_secret_env: str | None = None
    # Secrets cursors were signed with before a rotation: still read, never used to sign.
    previous_cursor_secrets: tuple[SecretStr, ...] = Field(default=(), max_length=10)

    @field_validator("cursor_secret", "previous_cursor_secrets")
    @classmethod
    def _long_enough(cls, value: SecretStr | tuple[SecretStr, ...] | None
                     ) -> SecretStr | tuple[SecretStr, ...] | None:
        for secret in (value,) if isinstance(value, SecretStr) else value or ():
            check_secret(secret.get_secret_value(), MIN_SECRET_LENGTH, "a cursor secret")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # uvicorn takes what it cannot parse as a literal host name that never matches: a typo
        # would silently trust no one (or, were it "*", everyone).
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip())
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or a network (CIDR, e.g. "
                                 "10.0.0.0/8, with no host bits set)") from None
        return tuple(entry.strip() for entry in value)

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        """Keys the file leaves out take the profile's value."""
        if not isinstance(data, dict):
            return data
        profile = data.get("profile", "production")
        defaults = PROFILE_DEFAULTS.get(profile if isinstance(profile, str) else "",
                                        PROFILE_DEFAULTS["production"])
        return {**defaults, **data}
