"""The gateway's configuration: a TOML file validated at start-up.

Example (the full format: the README and examples/gateway.toml)::

    [server]
    port = 8000
    cors_origins = ["https://shop.example.com"]

    [cache]
    url = "memory://"

    [[sources]]
    name = "carecloud"
    kind = "carecloud"
    base_url = "https://tenant.example.com/rest-api/v1"
    token_env = "CARECLOUD_TOKEN"

Validation fails fast with one :class:`ConfigError` naming the file, the entry and the field of
every problem found, all in one pass (unknown keys, bad values, tokens, duplicate names), in the
project's words and one location style, the file's own: ``[server] port``, ``[auth.jwt] secret``,
``[[sources]] #2 (joptic) base_url`` (the entry's number from 1, its name), ``[auth] api_keys #1
sha256``; a file that is not TOML at all gets its line and column (gateway/toml_errors.py).
Placeholder and famous weak secrets are refused (gateway/placeholders.py). Settings that
contradict each other are no error but warnings (:func:`config_warnings`).
Tokens are :class:`pydantic.SecretStr`: never in a repr, a message or a log.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.errors import BadUserInput
from gateway.languages import TAG, parse_accept_language
from gateway.placeholders import GENERATE, weakness
from gateway.toml_errors import describe as describe_toml
from gateway.toml_errors import entry_label

__all__ = [
    "DEFAULT_DECODED_MAX_BYTES",
    "DEFAULT_MEMORY_MAX_BYTES",
    "ApiKey",
    "AuthSettings",
    "CacheSettings",
    "ChangeSettings",
    "Config",
    "ConfigError",
    "JwtSettings",
    "LimitSettings",
    "LoggingSettings",
    "MetricsSettings",
    "PersistedSettings",
    "RateLimitSettings",
    "ServerSettings",
    "SourceConfig",
    "SourceKind",
    "TracingSettings",
    "config_warnings",
    "env_variables",
    "is_redis_url",
    "load_config",
    "parse_config",
]


class ConfigError(Exception):
    """A configuration file that cannot be used; the message lists every problem.

    ``unset_variables``: the environment variables the file names that are not set (a command
    line can say how to set them, or how to check the rest without them)."""

    def __init__(self, message: str, *, unset_variables: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.unset_variables = unset_variables


class SourceKind(StrEnum):
    CARECLOUD = "carecloud"
    JOPTIC = "joptic"
    AXIM = "axim"
    COMESTRI = "comestri"


NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
MIN_SECRET_LENGTH = 16
MIN_HMAC_SECRET_LENGTH = 32
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # an environment variable's name


def _secret_problem(value: str) -> str | None:
    """Why ``value`` cannot be a secret (a placeholder, a famous weak value), with the fix."""
    weak = weakness(value)
    return None if weak is None else f"{weak}: generate one, e.g. `{GENERATE}`"


def _check_secret(value: str, minimum: int, what: str) -> None:
    """``ValueError`` for a secret shorter than ``minimum`` characters, or a weak one."""
    if len(value.strip()) < minimum:
        raise ValueError(f"{what} must have at least {minimum} characters: generate one, e.g. "
                         f"`{GENERATE}`")
    problem = _secret_problem(value)
    if problem is not None:
        raise ValueError(problem)


class _Strict(BaseModel):
    # Unknown keys are typos: reject them at start, not in production.
    model_config = ConfigDict(extra="forbid", frozen=True)


Profile = Literal["production", "development"]

# What a profile turns on when the file does not say (the README's "Running in production").
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "production": {"graphiql": False, "introspection": False, "field_suggestions": False,
                   "readyz_detail": False, "csrf_prevention": True, "cost_extension": "off"},
    "development": {"graphiql": True, "introspection": True, "field_suggestions": True,
                    "readyz_detail": True, "csrf_prevention": False, "cost_extension": "header"},
}


class ServerSettings(_Strict):
    # "production" (the default, what `serve` runs) keeps everything below off that tells a
    # stranger about the schema or the sources, and needs a cursor secret; "development" (the
    # demo) turns them on. A key set in the file wins over its profile's default.
    profile: Profile = "production"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
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
    # Known query operations run as compiled plans (gateway/graph/plan.py); false: graphql-core
    # executes every operation.
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
            _check_secret(secret.get_secret_value(), MIN_SECRET_LENGTH, "a cursor secret")
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


DEFAULT_MEMORY_MAX_BYTES = 64 * 2**20
DEFAULT_DECODED_MAX_BYTES = 64 * 2**20


REDIS_SCHEMES = ("redis://", "rediss://")


def is_redis_url(url: str) -> bool:
    """Whether a ``[cache] url`` names Redis (else the process's memory): the one test the
    store, the rate limits and the change feed share, so they never disagree."""
    return url.startswith(REDIS_SCHEMES)


class CacheSettings(_Strict):
    url: str = "memory://"
    # Prefix of every key: deployments sharing one Redis can keep apart (the format version is
    # part of every key as well, so different versions never read each other's entries).
    namespace: str = Field(default="cgw", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    # The in-memory store's upstream answers (memory:// only; Redis is bounded by its maxmemory).
    memory_max_bytes: int = Field(default=DEFAULT_MEMORY_MAX_BYTES, ge=0)
    # What the process keeps read from answers: decoded JSON, parsed records, group tables.
    decoded_max_bytes: int = Field(default=DEFAULT_DECODED_MAX_BYTES, ge=0)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not (url.startswith("memory://") or is_redis_url(url)):
            raise ValueError("must start with memory://, redis:// or rediss://")
        return url


class ResponseCacheSettings(_Strict):
    """The whole-response cache (gateway/response_cache.py)."""

    enabled: bool = True
    # An answer is kept while the upstream answers it was built from are fresh, at most this.
    max_ttl_seconds: float = Field(default=60.0, ge=0, le=86400)
    max_bytes: int = Field(default=32 * 2**20, ge=0)  # the in-process memory tier
    max_entry_bytes: int = Field(default=2**20, ge=0)  # larger answers are not kept
    exclude_operations: tuple[str, ...] = ()  # operation names never kept
    public: bool = False  # Cache-Control of GET answers: public (CDNs may keep them) or private


class LimitSettings(_Strict):
    """``[limits]``: what one GraphQL request may cost (README, "Query safety").

    Document limits are checked where the query is parsed, before validation; the cost before
    execution; the budgets while executing. The defaults pass every published, README and test
    query with room to spare and refuse the attacks of issue 11.
    """

    # The document, before validation (gateway/graph/limits.py).
    max_tokens: int = Field(default=2000, ge=100)  # lexical tokens; comments count apart, as many
    max_depth: int = Field(default=15, ge=2)  # nested fields, through fragments (GraphiQL: 15)
    max_aliases: int = Field(default=30, ge=0)  # aliases in an operation, fragments expanded
    max_root_fields: int = Field(default=30, ge=1)  # fields of an operation's root selection
    max_directives: int = Field(default=30, ge=0)  # directive uses in the document
    max_variables: int = Field(default=30, ge=1)  # variable definitions; entries of `variables`
    max_variable_values: int = Field(default=1000, ge=1)  # JSON values in `variables`, nested
    # graphql-core's budget for comparing fields that share a response name (its quadratic
    # part); the suite's queries use at most 10, graphql-core's own default 500,000 is ~1 s.
    max_validation_work: int = Field(default=5000, ge=100)
    # The cost: upstream requests the query may make at most (gateway/graph/cost.py).
    max_cost: int = Field(default=1000, ge=1)
    # The answer's size, priced with the cost: values it may hold (every field of every object
    # and every item of every list, through aliases and fragments; a connection's page at its
    # size, a list of records at its @listSize).
    max_response_values: int = Field(default=200_000, ge=100)
    # Runtime backstops: upstream requests one GraphQL request may make, and its answer's size.
    max_upstream_requests: int = Field(default=1000, ge=1)
    max_response_bytes: int = Field(default=10_000_000, ge=1024)
    # Parsed documents kept (with their validation and plans), by estimated memory.
    document_cache_bytes: int = Field(default=32_000_000, ge=0)


PersistedMode = Literal["off", "apq", "trusted"]


class PersistedSettings(_Strict):
    """``[persisted]``: persisted operations (gateway/persisted.py)."""

    # "apq": Apollo's automatic persisted queries (a client sends a hash; the query once when
    # it misses); "trusted": only the registered operations run (a safelist); "off": neither.
    mode: PersistedMode = "apq"
    # APQ documents are kept this long (in memory, or in the [cache] Redis: shared) …
    apq_ttl_seconds: float = Field(default=86400.0, gt=0, le=30 * 86400)
    # … within this many bytes of their own, apart from the upstream answers (the oldest out).
    max_bytes: int = Field(default=16 * 2**20, ge=0)
    # Trusted mode's registered operations: every *.graphql file of these directories (one
    # operation or several per file) and these manifests (Apollo's persisted-query manifest,
    # or Relay's {"<id>": "<query text>"}). Relative paths: from the working directory.
    operation_dirs: tuple[str, ...] = ()
    manifests: tuple[str, ...] = ()


class ApiKey(_Strict):
    """One client's API key, configured by its SHA-256 (the key itself is never stored)."""

    client: str = Field(pattern=r"^[A-Za-z0-9_.:@-]{1,100}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # `printf %s KEY | sha256sum`


class JwtSettings(_Strict):
    """``[auth.jwt]``: bearer tokens signed with HS256 (a shared secret) or RS256 (a public key
    from a PEM file, a JWKS file or a JWKS URL)."""

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
            _check_secret(secret.get_secret_value(), MIN_HMAC_SECRET_LENGTH, "an HMAC secret")
        return secret


class AuthSettings(_Strict):
    """``[auth]``: who the client is (gateway/auth.py). Off (anyone, anonymous) by default."""

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


class ClientLimits(_Strict):
    requests_per_minute: int | None = Field(default=None, ge=0)
    cost_per_minute: int | None = Field(default=None, ge=0)


class RateLimitSettings(_Strict):
    """``[rate_limits]``: per client and minute (gateway/rate_limits.py); 0 is no limit.

    A client is its authenticated identity, else (anonymous) its address."""

    requests_per_minute: int = Field(default=0, ge=0)  # GraphQL requests
    # Upstream requests: a request is admitted on its estimated cost, charged its actual calls.
    cost_per_minute: int = Field(default=0, ge=0)
    clients: dict[str, ClientLimits] = Field(default_factory=dict)  # per client overrides
    # Failed authentications (bad API key, bad token) an address may make a minute; past them
    # its requests are refused (429) before their credentials are read, good ones too: keys
    # and tokens cannot be guessed at speed.
    failed_auth_per_minute: int = Field(default=30, ge=0)


class MetricsSettings(_Strict):
    """Prometheus metrics (gateway/metrics.py)."""

    enabled: bool = True  # /metrics on the gateway's port (or on `port`)
    # Serve /metrics on this port of [server] host instead of the gateway's port (`serve` only;
    # keeps metrics off a port the public reaches).
    port: int | None = Field(default=None, ge=1, le=65535)
    # Operation names that get their own label; later names count under "other" (a client
    # chooses operation names: unbounded labels would grow Prometheus without end).
    max_operation_names: int = Field(default=100, ge=0, le=10_000)


class ChangeSettings(_Strict):
    """The change feed behind subscriptions (gateway/changes): limits, and where its state is
    kept. Which sources are watched, and how often, is ``poll_interval_seconds`` per source."""

    # Events a subscriber may lag behind; more than one poll may announce at once (a queue holds
    # references to events every subscriber shares: 8 bytes an entry).
    queue_size: int = Field(default=1000, ge=1, le=100_000)
    max_subscriptions: int = Field(default=1000, ge=0, le=1_000_000)  # in this process
    max_subscriptions_per_connection: int = Field(default=20, ge=1, le=1000)
    # A client's share of this process (its identity, else its address: anonymous clients
    # behind one proxy share an address, and so a share).
    max_subscriptions_per_client: int = Field(default=100, ge=1, le=1_000_000)
    max_connections_per_client: int = Field(default=10, ge=1, le=100_000)  # WebSockets
    replay_events: int = Field(default=1000, ge=0, le=1_000_000)  # kept for a reconnect
    # Events one subscribe replays at most (each resolved, and charged, as a live one): past
    # it the newest are sent, the first with extensions.replay.skipped saying how many not.
    max_replay_per_subscribe: int = Field(default=100, ge=0, le=1_000_000)
    lease_seconds: float = Field(default=15.0, ge=1, le=3600)  # a poller's claim (Redis)
    # Watermarks and snapshots of known ids without Redis (with it: in Redis). Unset: kept in
    # memory only, so a restart takes a new baseline and announces nothing made while down.
    state_dir: str | None = None
    max_snapshot_items: int = Field(default=20_000, ge=1, le=1_000_000)  # per source and kind


LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class LoggingSettings(_Strict):
    """The gateway's log lines (gateway/logs.py)."""

    level: LogLevel = "info"
    # "auto": human-readable lines when stderr is a terminal (make run), JSON lines otherwise.
    format: Literal["auto", "json", "console"] = "auto"


class TracingSettings(_Strict):
    """OpenTelemetry tracing (gateway/tracing.py; needs the `tracing` extra installed)."""

    enabled: bool = False
    # "otlp": OTLP over HTTP to `endpoint` (default: the SDK's, http://localhost:4318, or
    # OTEL_EXPORTER_OTLP_ENDPOINT); "console": spans printed to stdout (trying it out).
    exporter: Literal["otlp", "console"] = "otlp"
    endpoint: str | None = None
    service_name: str = Field(default="catalogue-gateway", min_length=1, max_length=100)
    sample_ratio: float = Field(default=1.0, ge=0, le=1)  # of traces the client did not start


class SourceTuning(_Strict):
    """What ``[defaults]`` sets for every source and a ``[[sources]]`` entry may override."""

    timeout_seconds: float = Field(default=10.0, gt=0, le=300)  # one upstream try
    connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    timezone: str = "UTC"  # for upstream timestamps without a zone (CareCloud)
    # The language asked of a source that answers in languages (CareCloud) when the client's
    # Accept-Language names none it serves: an Accept-Language value ("en", "en-GB, cs;q=0.5").
    language: str | None = None
    # Largest group table read whole to emulate a filter, an order or a lookup by id.
    scan_limit: int = Field(default=5000, ge=1, le=100_000)
    cache_ttl_seconds: float = Field(default=60.0, ge=0)  # product answers
    group_cache_ttl_seconds: float = Field(default=300.0, ge=0)  # group lists and tables
    stale_grace_seconds: float = Field(default=600.0, ge=0)  # stale-if-error window after expiry
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.2, ge=0)  # first backoff; doubles, jittered
    retry_max_backoff_seconds: float = Field(default=5.0, ge=0)
    retry_after_cap_seconds: float = Field(default=10.0, ge=0)  # longest Retry-After honoured
    breaker_threshold: int = Field(default=5, ge=1)  # consecutive failures that open it
    breaker_reset_seconds: float = Field(default=30.0, gt=0)  # open time before a probe
    max_concurrency: int = Field(default=20, ge=1, le=1000)  # requests in flight to the source
    # Requests waiting for one of those slots; past it a call fails at once (retryable).
    max_queue: int = Field(default=100, ge=0, le=100_000)
    # Concurrent identical upstream requests share one call (off: each makes its own; for
    # measuring the uncached path honestly).
    dedup: bool = True
    # The change feed (gateway/changes): how often the source is asked what changed (None: the
    # source is not watched), and how often its whole listing is compared to find deletions
    # (None: every 10 polls). A watched source costs one poller per gateway (see [changes]).
    poll_interval_seconds: float | None = Field(default=None, ge=0.1, le=86400)
    full_poll_interval_seconds: float | None = Field(default=None, ge=0.1, le=7 * 86400)

    @field_validator("language")
    @classmethod
    def _language_ranges(cls, language: str | None) -> str | None:
        if language is not None:
            try:
                parse_accept_language(language, what="the value")
            except BadUserInput as exc:
                raise ValueError(exc.message) from None
        return language

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}") from None
        return zone


class SourceConfig(SourceTuning):
    """One upstream: an instance of a kind. ``name`` is its identity everywhere.

    Exactly one of ``token`` and ``token_env`` is set, and neither is blank: :func:`parse_config`
    checks it together with every other problem of the file.
    """

    name: str = Field(pattern=NAME_PATTERN)
    kind: SourceKind
    base_url: AnyHttpUrl
    token: SecretStr | None = None
    token_env: str | None = None
    # The languages the source answers in (CareCloud; default "cs" and "en"): the client's
    # Accept-Language is mapped to one of them, so no other value reaches the upstream or a key.
    languages: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=50)
    # A client header whose value, when sent, is the credential used for this source in place
    # of the configured token (the client's own upstream account); every cache of the source's
    # data is then keyed by it (gateway/upstream/credentials.py).
    pass_through_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")

    @field_validator("languages")
    @classmethod
    def _language_tags(cls, languages: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for tag in languages or ():
            if not TAG.fullmatch(tag):
                raise ValueError(f"{tag!r} is not a language tag (e.g. \"en\" or \"en-GB\")")
        return languages

    @property
    def url(self) -> str:
        """The base URL without a trailing slash."""
        return str(self.base_url).rstrip("/")

    def secret(self, environ: Mapping[str, str] | None = None) -> str:
        """The token: inline, or read from the environment variable ``token_env``."""
        if self.token is not None:
            return self.token.get_secret_value()
        environ = os.environ if environ is None else environ
        return environ[self.token_env or ""]


class Config(_Strict):
    server: ServerSettings = ServerSettings()
    cache: CacheSettings = CacheSettings()
    response_cache: ResponseCacheSettings = ResponseCacheSettings()
    limits: LimitSettings = LimitSettings()


    persisted: PersistedSettings = PersistedSettings()
    auth: AuthSettings = AuthSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()


    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    tracing: TracingSettings = TracingSettings()
    changes: ChangeSettings = ChangeSettings()
    defaults: SourceTuning = SourceTuning()
    sources: tuple[SourceConfig, ...] = Field(min_length=1)


# A problem found in a file: where it sorts (sections first, then entries in file order) and text.
_Problem = tuple[int, str]

_PRODUCTION_NEEDS_A_SECRET = (
    "[server] cursor_secret: the production profile needs a secret to sign cursors with: set "
    "cursor_secret_env to an environment variable that holds one, or cursor_secret (generate "
    f"one, e.g. `{GENERATE}`), or profile = \"development\" on a machine of your own")


def parse_config(
    data: Mapping[str, Any], *, origin: str = "<config>", environ: Mapping[str, str] | None = None,
    check_environment: bool = True,
) -> Config:
    """Validate a decoded TOML document; ``origin`` names it in error messages.

    Every problem is reported at once: field errors, token problems and duplicate names.
    ``check_environment=False`` checks everything but the environment variables the document
    names (``check-config --no-env``, for a machine without the secrets); the configuration
    then holds no secret read from the environment.
    """
    environ = os.environ if environ is None else environ
    config: Config | None = None
    problems: list[_Problem] = []
    try:
        resolved = _with_environment(data, environ) if check_environment else data
        config = Config.model_validate(_with_defaults(resolved))
    except ValidationError as exc:
        problems += _describe(exc, data)
    problems += _token_problems(data, environ, check_environment)
    problems += _cursor_secret_problems(data, environ, check_environment)
    problems += _jwt_secret_problems(data, environ, check_environment)
    problems += _duplicate_names(data)
    if problems or config is None:
        problems.sort(key=lambda problem: problem[0])
        unset = tuple(variable for variable in env_variables(data)
                      if check_environment and variable not in environ)
        raise ConfigError("\n".join(f"{origin}: {text}" for _, text in problems),
                          unset_variables=unset)
    return config


def env_variables(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The environment variables a decoded configuration reads (its ``*_env`` keys), once each:
    ``[server] cursor_secret_env``, ``[auth.jwt] secret_env``, each source's ``token_env``."""
    server, auth = data.get("server"), data.get("auth")
    jwt = auth.get("jwt") if isinstance(auth, dict) else None
    named = [server.get("cursor_secret_env") if isinstance(server, dict) else None,
             jwt.get("secret_env") if isinstance(jwt, dict) else None,
             *(entry.get("token_env") for _, entry in _source_entries(data))]
    return tuple(dict.fromkeys(variable for variable in named
                               if isinstance(variable, str) and VARIABLE.fullmatch(variable)))


def _source_entries(data: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    sources = data.get("sources")
    if not isinstance(sources, list):
        return []
    return [(i, entry) for i, entry in enumerate(sources) if isinstance(entry, dict)]


def _variable_problem(variable: str, environ: Mapping[str, str], check_environment: bool, *,
                      how: str, min_length: int = 1) -> str | None:
    """What is wrong with the environment variable a ``*_env`` key names (``how``: how to set
    it), or None."""
    if not variable.strip():
        return "name an environment variable"
    if not VARIABLE.fullmatch(variable):
        return (f"{variable!r} is not the name of an environment variable (letters, digits and "
                "_, without a $)")
    if not check_environment:
        return None
    value = environ.get(variable)
    if value is None:
        return f"environment variable {variable} is not set: {how}"
    if not value.strip():
        return f"environment variable {variable} is empty: {how}"
    if len(value.strip()) < min_length:
        return f"the secret in {variable} must have at least {min_length} characters: {how}"
    weak = weakness(value)
    return None if weak is None else f"the value of {variable} {weak}: {how}"


def _with_environment(data: Mapping[str, Any], environ: Mapping[str, str]) -> Mapping[str, Any]:
    """``[server] cursor_secret_env``'s secret as ``cursor_secret``, when it can be used (what is
    wrong with it, :func:`_cursor_secret_problems` says)."""
    server = data.get("server")
    if not isinstance(server, dict) or "cursor_secret" in server:
        return data
    variable = server.get("cursor_secret_env")
    if not isinstance(variable, str) or _variable_problem(
            variable, environ, True, how="", min_length=MIN_SECRET_LENGTH) is not None:
        return data
    return {**data, "server": {**server, "cursor_secret": environ[variable]}}


def _token_problems(data: Mapping[str, Any], environ: Mapping[str, str],
                    check_environment: bool) -> list[_Problem]:
    """Exactly one of ``token`` and ``token_env``; no blank or placeholder token, no unset,
    blank or placeholder variable."""
    problems: list[_Problem] = []
    for i, entry in _source_entries(data):
        token, variable = entry.get("token"), entry.get("token_env")
        text = ""
        if "token" in entry and "token_env" in entry:
            text = ": give exactly one of token and token_env, not both"
        elif "token" not in entry and "token_env" not in entry:
            text = (": no token: give token_env, naming an environment variable that holds it, "
                    "or token")
        elif isinstance(token, str) and not token.strip():
            text = " token: the token is empty"
        elif isinstance(token, str) and (weak := weakness(token)) is not None:
            text = (f" token: {weak}, not a token: put the source's token in an environment "
                    "variable, and its name in token_env")
        elif isinstance(variable, str):
            problem = _variable_problem(variable, environ, check_environment,
                                        how=f"export {variable}=… with this source's token")
            text = f" token_env: {problem}" if problem else ""
        if text:
            problems.append((i + 1, _entry(i, data) + text))
    return problems


def _cursor_secret_problems(data: Mapping[str, Any], environ: Mapping[str, str],
                            check_environment: bool) -> list[_Problem]:
    """One of ``cursor_secret`` and ``cursor_secret_env``, a usable variable, and a secret at
    all for the production profile (the demo generates one)."""
    server = data.get("server")
    server = server if isinstance(server, dict) else {}
    secret, variable = server.get("cursor_secret"), server.get("cursor_secret_env")
    if "cursor_secret" in server and "cursor_secret_env" in server:
        return [(0, "[server]: give one of cursor_secret and cursor_secret_env, not both")]
    if isinstance(variable, str):
        problem = _variable_problem(variable, environ, check_environment,
                                    how=f'export {variable}="$({GENERATE})"',
                                    min_length=MIN_SECRET_LENGTH)
        return [(0, f"[server] cursor_secret_env: {problem}")] if problem else []
    if "cursor_secret_env" in server or server.get("profile", "production") != "production":
        return []  # a variable's name of the wrong type (its field's error says so), or no need
    if secret is not None and (not isinstance(secret, str) or secret.strip()):
        return []  # a secret, or a value of the wrong type (the field's own error says so)
    return [(0, _PRODUCTION_NEEDS_A_SECRET)]


def _jwt_secret_problems(data: Mapping[str, Any], environ: Mapping[str, str],
                         check_environment: bool) -> list[_Problem]:
    """``[auth.jwt] secret_env`` names a variable that is set, with a long enough secret."""
    auth = data.get("auth")
    jwt = auth.get("jwt") if isinstance(auth, dict) else None
    variable = jwt.get("secret_env") if isinstance(jwt, dict) else None
    if not isinstance(variable, str):
        return []
    problem = _variable_problem(
        variable, environ, check_environment, min_length=MIN_HMAC_SECRET_LENGTH,
        how=f"export {variable}=… with the HS* shared secret (generate one, e.g. "
            f"`{GENERATE}`)")
    return [(0, f"[auth.jwt] secret_env: {problem}")] if problem else []


def _duplicate_names(data: Mapping[str, Any]) -> list[_Problem]:
    problems: list[_Problem] = []
    first: dict[str, int] = {}
    for i, entry in _source_entries(data):
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            problems.append((i + 1, f"{_entry(i, data)} name: duplicate source name {name!r} "
                                    f"(also {entry_label('sources', first[name] + 1)})"))
        else:
            first[name] = i
    return problems


def _with_defaults(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Each source entry over ``[defaults]``, merged field by field (the entry wins)."""
    defaults, sources = data.get("defaults"), data.get("sources")
    if not isinstance(defaults, dict) or not isinstance(sources, list):
        return data
    # Unknown keys are reported once, at [defaults] <key>, not again under every entry.
    known = {k: v for k, v in defaults.items() if k in SourceTuning.model_fields}
    merged = [{**known, **s} if isinstance(s, dict) else s for s in sources]
    return {**data, "sources": merged}


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None,
                check_environment: bool = True) -> Config:
    """Read and validate a TOML configuration file (see :func:`parse_config`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (TOML is UTF-8 text)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}, {describe_toml(text, exc)}") from None
    return parse_config(data, origin=str(path), environ=environ,
                        check_environment=check_environment)


# -- pydantic's errors in the project's words ---------------------------------------------------

# What a string key's pattern asks, in words.
_PATTERNS = {
    "name": "must be a lowercase letter, then up to 62 lowercase letters, digits, '-' or '_'",
    "namespace": "must be 1 to 40 letters, digits, '.', '-' or '_'",
    "client": "must be 1 to 100 letters, digits, '.', ':', '@', '-' or '_'",
    "sha256": "must be the key's SHA-256, 64 lowercase hex digits (`printf %s KEY | "
              "sha256sum`), not the key",
    "pass_through_header": "must be a header name: 1 to 64 letters, digits or '-'",
}
# pydantic's error type -> the project's words, for errors whose words need no context.
_WORDS = {
    "missing": "missing: this key is required",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string (in quotes)",
    "tuple_type": "must be a list: [ … ]",
    "list_type": "must be a list: [ … ]",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "url_type": "must be an absolute http(s) URL",
    "url_parsing": "must be an absolute http(s) URL",
    "url_scheme": "must be an absolute http(s) URL",
    "url_syntax_violation": "must be an absolute http(s) URL",
}
# Bounds: pydantic's error type, its context key, the words.
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be more than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
    "too_short": ("min_length", "must have at least {} item{}"),
    "too_long": ("max_length", "must have at most {} item{}"),
    "string_too_short": ("min_length", "must have at least {} character{}"),
    "string_too_long": ("max_length", "must have at most {} character{}"),
}
_AT_LEAST_ONE_SOURCE = ("missing: give at least one [[sources]] entry (name, kind, base_url "
                        "and token_env)")


def _describe(exc: ValidationError, data: Mapping[str, Any]) -> list[_Problem]:
    # Only location and message: pydantic's input_value could be a token.
    problems: list[_Problem] = []
    errors = exc.errors(include_input=False, include_url=False)
    entries_failed = any(len(e["loc"]) > 1 and e["loc"][0] == "sources" for e in errors)
    for error in errors:
        loc = tuple(error["loc"])
        if loc == ("sources",) and error["type"] == "too_short" and entries_failed:
            continue  # a consequence of the entries' own errors, already listed
        index = loc[1] if len(loc) > 1 and loc[0] == "sources" else None
        problems.append((index + 1 if isinstance(index, int) else 0,
                         _message(loc, error["type"], error["msg"], error.get("ctx") or {},
                                  data)))
    return problems


def _message(loc: tuple[Any, ...], kind: str, text: str, ctx: Mapping[str, Any],
             data: Mapping[str, Any]) -> str:
    """One field error in the project's words, with its location."""
    if kind == "extra_forbidden":
        return _unknown(loc, data)
    if loc == ("sources",) and kind in ("missing", "too_short"):
        return f"[[sources]]: {_AT_LEAST_ONE_SOURCE}"
    return f"{_where(loc, data)}: {_words(loc, kind, text, ctx)}"


def _words(loc: tuple[Any, ...], kind: str, text: str, ctx: Mapping[str, Any]) -> str:
    if kind in _WORDS:
        return _WORDS[kind]
    if kind in ("literal_error", "enum"):
        return "must be one of " + ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected"))))
    if kind in _BOUNDS and ctx.get(_BOUNDS[kind][0]) is not None:
        key, words = _BOUNDS[kind]
        bound = ctx[key]
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return words.format(bound, "" if bound == 1 else "s")
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(loc[-1]), f"must match the pattern {ctx.get('pattern')}")
    if kind in ("value_error", "assertion_error"):
        return text.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return text[:1].lower() + text[1:]  # a rare error: pydantic's own words


def _unknown(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    """An unknown key or table, with the known one it is closest to."""
    *container, key = loc
    close = difflib.get_close_matches(str(key), _known_keys(tuple(container)), n=1)
    value = data.get(key) if not container else None
    if isinstance(value, dict) or (isinstance(value, list) and value
                                   and all(isinstance(item, dict) for item in value)):
        def table(name: str) -> str:
            return f"[[{name}]]" if name == "sources" or isinstance(value, list) else f"[{name}]"

        return f"{table(key)}: unknown table" + (f" (did you mean {table(close[0])}?)"
                                                 if close else "")
    where = _where(loc, data)
    return f"{where}: unknown key" + (f" (did you mean {close[0]}?)" if close else "")


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (``JwtSettings | None`` holds ``JwtSettings``), if any."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    for candidate in (annotation, *(typing.get_args(annotation) if union else ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _model_at(container: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the table at ``container`` (``()``: the file; ``("sources", 2)``: an
    entry), or None when it is not a table of the configuration."""
    if len(container) == 2 and container[0] == "sources" and isinstance(container[1], int):
        return SourceConfig
    model: type[BaseModel] | None = Config
    for part in container:
        field = model.model_fields.get(part) if model and isinstance(part, str) else None
        model = _model_of(field.annotation) if field is not None else None
    return model


def _known_keys(container: tuple[Any, ...]) -> list[str]:
    """The keys the table at ``container`` accepts."""
    model = _model_at(container)
    return list(model.model_fields) if model is not None else []


def _where(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    """A place in the file in the project's one style: ``[server] port``, ``[auth.jwt]
    secret``, ``[[sources]] #2 (joptic) base_url``, ``[auth] api_keys #1 sha256``,
    ``[rate_limits] clients.shop.requests_per_minute``; a key of no table bare."""
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        head, rest = _entry(loc[1], data), loc[2:]
    else:
        tables = 0
        while tables < len(loc) and _model_at(loc[:tables + 1]) is not None:
            tables += 1
        head = f"[{'.'.join(map(str, loc[:tables]))}]" if tables else ""
        rest = loc[tables:]
    words: list[str] = [head] if head else []
    for part in rest:
        if isinstance(part, int):
            words.append(f"#{part + 1}")
        elif words and words[-1] != head and not words[-1].startswith("#"):
            words[-1] += f".{part}"
        else:
            words.append(str(part))
    return " ".join(words)


def _entry(index: int, data: Mapping[str, Any]) -> str:
    """``[[sources]] #3 (axim)``: the entry's number from 1, and its name when it has one."""
    sources = data.get("sources")
    name = None
    if isinstance(sources, list) and index < len(sources) and isinstance(sources[index], dict):
        name = sources[index].get("name")
    return entry_label("sources", index + 1, name)


# -- settings that contradict each other --------------------------------------------------------


def config_warnings(config: Config) -> list[str]:
    """Settings that contradict each other: not an error, but one of the two does not do what
    it says. In the messages' location style; empty when there is none."""
    server, warnings = config.server, []
    if server.graphiql and not server.introspection:
        warnings.append("[server] graphiql = true with introspection = false: GraphiQL cannot "
                        "load the schema (no documentation, no completion): set introspection "
                        "= true too, or graphiql = false")
    if server.field_suggestions and not server.introspection:
        warnings.append("[server] field_suggestions = true with introspection = false: \"Did "
                        "you mean …?\" tells a client the field names introspection hides: set "
                        "field_suggestions = false")
    if server.federation and config.persisted.mode == "trusted":
        warnings.append("[server] federation = true with [persisted] mode = \"trusted\": the "
                        "router's queries (_service, _entities) are made at run time, are "
                        "registered nowhere, and are refused")
    previous = {secret.get_secret_value() for secret in server.previous_cursor_secrets}
    if server.cursor_secret is not None and server.cursor_secret.get_secret_value() in previous:
        warnings.append("[server] previous_cursor_secrets holds the cursor secret itself: "
                        "drop it from the list")
    if (config.persisted.operation_dirs or config.persisted.manifests) and \
            config.persisted.mode != "trusted":
        warnings.append(f"[persisted] operation_dirs and manifests with mode = "
                        f"\"{config.persisted.mode}\": only mode = \"trusted\" reads them")
    if config.response_cache.public and config.auth.required:
        warnings.append("[response_cache] public = true with [auth] required = true: every "
                        "answer is an authenticated client's, so private: public does nothing")
    if config.metrics.port is not None and not config.metrics.enabled:
        warnings.append(f"[metrics] port = {config.metrics.port} with enabled = false: nothing "
                        "is served on it")
    if config.tracing.endpoint is not None and config.tracing.exporter == "console":
        warnings.append("[tracing] endpoint with exporter = \"console\": spans go to stdout, "
                        "the endpoint is not used")
    deadline = server.request_timeout_seconds
    late = [(i, s) for i, s in enumerate(config.sources) if s.timeout_seconds >= deadline]
    if late and config.defaults.timeout_seconds >= deadline:
        warnings.append(_too_slow("[defaults]", config.defaults.timeout_seconds, deadline))
        late = [(i, s) for i, s in late if s.timeout_seconds != config.defaults.timeout_seconds]
    warnings += [_too_slow(entry_label("sources", i + 1, s.name), s.timeout_seconds, deadline)
                 for i, s in late]
    return warnings


def _too_slow(where: str, timeout: float, deadline: float) -> str:
    return (f"{where} timeout_seconds = {timeout:g} with [server] request_timeout_seconds = "
            f"{deadline:g}: the request's deadline ends a slow try first, so it is never "
            "retried: make timeout_seconds shorter")
