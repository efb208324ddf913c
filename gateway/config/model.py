"""The whole file: one table (or list of tables) a section."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from pydantic import Field, SecretStr

from gateway.config.access import AuthSettings, RateLimitSettings
from gateway.config.base import Strict
from gateway.config.caching import CacheSettings, PersistedSettings, ResponseCacheSettings
from gateway.config.changes import ChangeSettings
from gateway.config.limits import LimitSettings
from gateway.config.observability import LoggingSettings, MetricsSettings, TracingSettings
from gateway.config.server import ServerSettings
from gateway.config.sources import SourceConfig, SourceTuning

__all__ = ["Config", "fingerprint"]


class Config(Strict):
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


def fingerprint(config: Config) -> str:
    """A short digest of the whole configuration, secrets included (another token may see
    other data), naming what depends on all of it: shared cache entries made under it."""
    def plain(value: Any) -> Any:
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

    encoded = orjson.dumps(config.model_dump(warnings=False), default=plain,
                           option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()[:16]
