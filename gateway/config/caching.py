"""``[cache]`` (the upstream answers' store), ``[response_cache]`` (whole answers) and
``[persisted]`` (persisted operations)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from gateway.config.base import Strict

__all__ = [
    "DEFAULT_DECODED_MAX_BYTES",
    "DEFAULT_MEMORY_MAX_BYTES",
    "REDIS_SCHEMES",
    "CacheSettings",
    "PersistedMode",
    "PersistedSettings",
    "ResponseCacheSettings",
    "is_redis_url",
]


DEFAULT_MEMORY_MAX_BYTES = 64 * 2**20
DEFAULT_DECODED_MAX_BYTES = 64 * 2**20


REDIS_SCHEMES = ("redis://", "rediss://")


def is_redis_url(url: str) -> bool:
    """Whether a ``[cache] url`` names Redis (else the process's memory): the one test the
    store, the rate limits and the change feed share, so they never disagree."""
    return url.startswith(REDIS_SCHEMES)


class CacheSettings(Strict):
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


class ResponseCacheSettings(Strict):
    """The whole-response cache (gateway/caches/responses.py)."""

    enabled: bool = True
    # An answer is kept while the upstream answers it was built from are fresh, at most this.
    max_ttl_seconds: float = Field(default=60.0, ge=0, le=86400)
    max_bytes: int = Field(default=32 * 2**20, ge=0)  # the in-process memory tier
    max_entry_bytes: int = Field(default=2**20, ge=0)  # larger answers are not kept
    exclude_operations: tuple[str, ...] = ()  # operation names never kept
    public: bool = False  # Cache-Control of GET answers: public (CDNs may keep them) or private


PersistedMode = Literal["off", "apq", "trusted"]


class PersistedSettings(Strict):
    """``[persisted]``: persisted operations (gateway/edge/persisted.py)."""

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
