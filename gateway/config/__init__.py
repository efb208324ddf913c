"""The gateway's configuration: a TOML file validated at start-up.

Example (the full format: docs/configuration.md and examples/gateway.toml)::

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
sha256``; a file that is not TOML at all gets its line and column (``toml_errors``).
Placeholder and famous weak secrets are refused (``placeholders``). Settings that contradict
each other are no error but warnings (:func:`config_warnings`).
Tokens are :class:`pydantic.SecretStr`: never in a repr, a message or a log.

Every public name below is imported from this package (``from gateway.config import Config``);
its modules, each importing only those listed before it:

- ``placeholders``: placeholder and famous weak secrets, refused wherever a secret is read
- ``toml_errors``: a file that is not valid TOML, in plain words (line, column, what is wrong)
- ``base``: :class:`ConfigError`, :class:`SourceKind`, the strict model every table is, the
  checks of a secret's length and strength
- the tables, one module a group: ``server`` (``[server]`` and its profiles), ``caching``
  (``[cache]``, ``[response_cache]``, ``[persisted]``), ``limits`` (``[limits]``), ``access``
  (``[auth]``, ``[auth.jwt]``, ``[rate_limits]``), ``observability`` (``[metrics]``,
  ``[logging]``, ``[tracing]``), ``changes`` (``[changes]``), ``sources`` (``[defaults]``,
  ``[[sources]]``)
- ``model``: :class:`Config`, the whole file
- ``messages``: pydantic's errors in the project's words and location style
- ``loading``: :func:`load_config` and :func:`parse_config`, with the environment variables a file
  names (:func:`env_variables`) and the problems found across fields
- ``contradictions``: :func:`config_warnings`
"""

from __future__ import annotations

from gateway.config.access import (
    ApiKey,
    AuthSettings,
    ClientLimits,
    JwtSettings,
    RateLimitSettings,
)
from gateway.config.base import ConfigError, SourceKind
from gateway.config.caching import (
    DEFAULT_DECODED_MAX_BYTES,
    DEFAULT_MEMORY_MAX_BYTES,
    CacheSettings,
    PersistedSettings,
    ResponseCacheSettings,
    is_redis_url,
)
from gateway.config.changes import ChangeSettings
from gateway.config.contradictions import config_warnings
from gateway.config.limits import LimitSettings
from gateway.config.loading import (
    config_from_text,
    env_variables,
    load_config,
    parse_config,
    read_config_text,
)
from gateway.config.model import Config, fingerprint
from gateway.config.observability import LoggingSettings, MetricsSettings, TracingSettings
from gateway.config.server import ServerSettings
from gateway.config.sources import SourceConfig, SourceTuning

__all__ = [
    "DEFAULT_DECODED_MAX_BYTES",
    "DEFAULT_MEMORY_MAX_BYTES",
    "ApiKey",
    "AuthSettings",
    "CacheSettings",
    "ChangeSettings",
    "ClientLimits",
    "Config",
    "ConfigError",
    "JwtSettings",
    "LimitSettings",
    "LoggingSettings",
    "MetricsSettings",
    "PersistedSettings",
    "RateLimitSettings",
    "ResponseCacheSettings",
    "ServerSettings",
    "SourceConfig",
    "SourceKind",
    "SourceTuning",
    "TracingSettings",
    "config_from_text",
    "config_warnings",
    "env_variables",
    "fingerprint",
    "is_redis_url",
    "load_config",
    "parse_config",
    "read_config_text",
]
