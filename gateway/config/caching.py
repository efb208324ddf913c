"""``[cache]`` (the upstream answers' store), ``[response_cache]`` (whole answers) and
``[persisted]`` (persisted operations)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from gateway.config.base import Strict

__all__ = [
    "DEFAULT_DECODED_MAX_BYTES",
    "DEFAULT_MEMORY_MAX_BYTES",
    "REDIS_SCHEMES",
    "CacheSettings",
    "PersistedMode",
    "PersistedSettings",
    "RedisMode",
    "ResponseCacheSettings",
    "is_redis_url",
]


DEFAULT_MEMORY_MAX_BYTES = 64 * 2**20
DEFAULT_DECODED_MAX_BYTES = 64 * 2**20


REDIS_SCHEMES = ("redis://", "rediss://")
RedisMode = Literal["single", "sentinel", "cluster"]
# "host:port" of a Redis server or sentinel (IPv6 in brackets).
Address = Annotated[str, Field(pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]{1,253}):[0-9]{1,5}$")]


def is_redis_url(url: str) -> bool:
    """Whether a ``[cache] url`` names Redis (else the process's memory): the one test the
    store, the rate limits and the change feed share, so they never disagree."""
    return url.startswith(REDIS_SCHEMES)


class CacheSettings(Strict):
    url: str = "memory://"  # memory://, or redis:// (rediss://) shared by every process
    # Prefix of every key: deployments sharing one Redis can keep apart (the format version is
    # part of every key as well, so different versions never read each other's entries).
    namespace: str = Field(default="cgw", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    # The in-memory store's upstream answers (memory:// only; Redis is bounded by its maxmemory).
    memory_max_bytes: int = Field(default=DEFAULT_MEMORY_MAX_BYTES, ge=0)
    # What the process keeps read from answers: decoded JSON, parsed records, group tables.
    decoded_max_bytes: int = Field(default=DEFAULT_DECODED_MAX_BYTES, ge=0)
    # How the Redis of a redis:// url is reached (the url's password, TLS and database serve
    # every mode): "single", its host; "sentinel", the primary the sentinels name for
    # sentinel_service, followed through failovers; "cluster", the cluster of cluster_nodes.
    redis_mode: RedisMode = "single"
    sentinels: tuple[Address, ...] = Field(default=(), max_length=16)  # "host:port" each
    # The name the sentinels monitor the primary as (`sentinel monitor <name> …`).
    sentinel_service: str = Field(default="mymaster", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    cluster_nodes: tuple[Address, ...] = Field(default=(), max_length=64)  # some of its nodes

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not (url.startswith("memory://") or is_redis_url(url)):
            raise ValueError("must start with memory://, redis:// or rediss://")
        return url

    @model_validator(mode="after")
    def _mode_has_its_servers(self) -> CacheSettings:
        mode = self.redis_mode
        if mode != "single" and not is_redis_url(self.url):
            raise ValueError(f"redis_mode = \"{mode}\" needs a redis:// or rediss:// url (its "
                             "password, TLS and database; the host is not used)")
        if mode == "sentinel" and not self.sentinels:
            raise ValueError('redis_mode = "sentinel" needs sentinels = ["host:26379", ...]')
        if mode == "cluster" and not self.cluster_nodes:
            raise ValueError('redis_mode = "cluster" needs cluster_nodes = ["host:6379", ...]')
        if mode == "cluster" and urlsplit(self.url).path.strip("/") not in ("", "0"):
            raise ValueError("a Redis cluster has only database 0: end the url with /0")
        if mode != "sentinel" and self.sentinels:
            raise ValueError('sentinels are only read with redis_mode = "sentinel"')
        if mode != "cluster" and self.cluster_nodes:
            raise ValueError('cluster_nodes are only read with redis_mode = "cluster"')
        return self


class ResponseCacheSettings(Strict):
    """The whole-response cache (gateway/caches/responses.py)."""

    enabled: bool = True  # whole answers kept, in memory (and Redis when [cache] is)
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
