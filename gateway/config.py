"""The gateway's configuration: a TOML file validated at start-up.

Example (the full format is in the README)::

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
every problem found. Tokens are :class:`pydantic.SecretStr`: never in a repr, a message or a log.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any
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

__all__ = [
    "CacheSettings",
    "Config",
    "ConfigError",
    "ServerSettings",
    "SourceConfig",
    "SourceKind",
    "load_config",
    "parse_config",
]


class ConfigError(Exception):
    """A configuration file that cannot be used; the message lists every problem."""


class SourceKind(StrEnum):
    CARECLOUD = "carecloud"
    JOPTIC = "joptic"
    AXIM = "axim"
    COMESTRI = "comestri"


class _Strict(BaseModel):
    # Unknown keys are typos: reject them at start, not in production.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    cors_origins: tuple[str, ...] = ()
    cors_origin_regex: str | None = None
    graphiql: bool = True  # the playground on a browser GET of /graphql; off in production
    playground_assets: str | None = None  # GraphiQL's files (default: build/playground/...)
    federation: bool = False  # serve the Apollo Federation 2 subgraph schema
    max_body_bytes: int = Field(default=1_000_000, ge=1024)  # largest POST body accepted
    # Idle keep-alive connections are kept longer than clients and load balancers keep theirs
    # (httpx 5 s, most balancers 60 s): then the client, never the server, closes an idle
    # connection, and no request is sent on a connection the server is just closing.
    keep_alive_seconds: float = Field(default=75.0, gt=0, le=3600)
    # Overall deadline of one GraphQL request: retries and slow sources stop within it.
    request_timeout_seconds: float = Field(default=15.0, gt=0, le=600)


class CacheSettings(_Strict):
    url: str = "memory://"
    # Prefix of every key: deployments sharing one Redis can keep apart (the format version is
    # part of every key as well, so different versions never read each other's entries).
    namespace: str = Field(default="cgw", pattern=r"^[A-Za-z0-9_.-]{1,40}$")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("must start with memory://, redis:// or rediss://")
        return url


class SourceTuning(_Strict):
    """What ``[defaults]`` sets for every source and a ``[[sources]]`` entry may override."""

    timeout_seconds: float = Field(default=10.0, gt=0, le=300)  # one upstream try
    connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    timezone: str = "UTC"  # for upstream timestamps without a zone (CareCloud)
    language: str | None = None  # Accept-Language sent when the client gives none
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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}") from None
        return zone


class SourceConfig(SourceTuning):
    """One upstream: an instance of a kind. ``name`` is its identity everywhere."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    kind: SourceKind
    base_url: AnyHttpUrl
    token: SecretStr | None = None
    token_env: str | None = None

    @model_validator(mode="after")
    def _one_token(self) -> SourceConfig:
        if (self.token is None) == (self.token_env is None):
            raise ValueError("give exactly one of token or token_env")
        return self

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
    defaults: SourceTuning = SourceTuning()
    sources: tuple[SourceConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"duplicate source name {source.name!r}")
            seen.add(source.name)
        return self

    def source(self, name: str) -> SourceConfig:
        return next(s for s in self.sources if s.name == name)


def parse_config(
    data: Mapping[str, Any], *, origin: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate a decoded TOML document; ``origin`` names it in error messages."""
    try:
        config = Config.model_validate(_with_defaults(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data, origin)) from None
    environ = os.environ if environ is None else environ
    missing = [
        f"{origin}: {_entry(('sources', i), data)}.token_env: "
        f"environment variable {s.token_env} is not set"
        for i, s in enumerate(config.sources)
        if s.token_env is not None and not environ.get(s.token_env)
    ]
    if missing:
        raise ConfigError("\n".join(missing))
    return config


def _with_defaults(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Each source entry over ``[defaults]``, merged field by field (the entry wins)."""
    defaults, sources = data.get("defaults"), data.get("sources")
    if not isinstance(defaults, dict) or not isinstance(sources, list):
        return data
    # Unknown keys are reported once, at defaults.<key>, not again under every entry.
    known = {k: v for k, v in defaults.items() if k in SourceTuning.model_fields}
    merged = [{**known, **s} if isinstance(s, dict) else s for s in sources]
    return {**data, "sources": merged}


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a TOML configuration file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, origin=str(path), environ=environ)


def _describe(exc: ValidationError, data: Mapping[str, Any], origin: str) -> str:
    # Only location and message: pydantic's input_value could be a token.
    lines = []
    errors = exc.errors(include_input=False, include_url=False)
    entries_failed = any(len(e["loc"]) > 1 and e["loc"][0] == "sources" for e in errors)
    for error in errors:
        loc = tuple(error["loc"])
        if loc == ("sources",) and error["type"] == "too_short" and entries_failed:
            continue  # a consequence of the entries' own errors, already listed

        where = _where(loc, data)
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: {where}: {message}")
    return "\n".join(lines)


def _where(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        entry = _entry(loc[:2], data)
        return ".".join([entry, *map(str, loc[2:])]) if len(loc) > 2 else entry
    return ".".join(map(str, loc)) or "(top level)"


def _entry(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    """``sources[2] (name "axim")`` — the entry's index, and its name when it has one."""
    index = loc[1]
    label = f"sources[{index}]"
    sources = data.get("sources")
    if isinstance(sources, list) and index < len(sources) and isinstance(sources[index], dict):
        name = sources[index].get("name")
        if isinstance(name, str):
            label += f' (name "{name}")'
    return label
