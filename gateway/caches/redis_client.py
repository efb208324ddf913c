"""One way to reach Redis, for every part that shares state through it: the upstream store and
the response cache (:mod:`gateway.caches.store`), APQ documents, rate limits and the change
feed. ``[cache] redis_mode`` says how:

* ``single``: the server of ``url``;
* ``sentinel``: the primary that the ``sentinels`` name for ``sentinel_service``, asked again
  whenever a connection to it fails (a failover promoted a replica): redis-py's ``Sentinel``;
* ``cluster``: the cluster that ``cluster_nodes`` (any of its nodes) belong to, each key sent
  to the node serving its slot: redis-py's ``RedisCluster``.

``url`` gives the password, TLS (``rediss://``) and database of every mode (a cluster has only
database 0). A part whose script touches several keys keeps them in one slot with a hash tag
(:func:`slot_tag`): a cluster runs a script only on keys of one slot.

Example::

    client = redis_client(config.cache)
    await client.get(f"{slot_tag(namespace, 'apq')}:doc:…")
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool, SSLConnection, parse_url
from redis.asyncio.sentinel import Sentinel

from gateway.config import CacheSettings

__all__ = ["RedisClient", "as_cache", "limits_storage", "redis_client", "reply_seconds",
           "slot_tag"]

RedisClient = Redis | RedisCluster
# A dead primary must not hold a request: connecting fails after this, and a reply that does not
# come (the server stopped answering) after SOCKET_SECONDS. A blocking read asks for less.
CONNECT_SECONDS = 1.0
SOCKET_SECONDS = 5.0
# Connections to one server. A request reads once per upstream call, all at once, so a loaded
# process asks for far more at a time than redis-py's default pool (100, and past it an error:
# a cache miss). Past these a read waits up to CONNECT_SECONDS for a free connection (one
# server); Sentinel's and Cluster's pools cannot wait, so theirs are larger.
MAX_CONNECTIONS = 256
MAX_CONNECTIONS_UNQUEUED = 2048


def as_cache(cache: CacheSettings | str) -> CacheSettings:
    """``[cache]``, or a single server's (or memory's) URL as a ``[cache]`` of its own."""
    return cache if isinstance(cache, CacheSettings) else CacheSettings(url=cache)


def redis_client(cache: CacheSettings, *, socket_timeout: float | None = None) -> RedisClient:
    """A client of the Redis ``cache`` names, in its mode (``socket_timeout``: seconds a reply
    may take, by default :func:`reply_seconds`)."""
    url = parse_url(cache.url)  # redis-py's reading of the URL, for every mode alike
    common: dict[str, Any] = {"socket_timeout": socket_timeout or reply_seconds(cache),
                              "socket_connect_timeout": CONNECT_SECONDS}
    if cache.redis_mode == "single":
        pool = BlockingConnectionPool.from_url(cache.url, max_connections=MAX_CONNECTIONS,
                                               timeout=CONNECT_SECONDS, **common)
        return Redis.from_pool(pool)  # the client owns the pool: aclose() closes both
    common["max_connections"] = MAX_CONNECTIONS_UNQUEUED
    credentials: dict[str, Any] = {
        "username": url.get("username"), "password": url.get("password"),
        "ssl": url.get("connection_class") is SSLConnection}
    if cache.redis_mode == "sentinel":
        sentinel = Sentinel([_address(a) for a in cache.sentinels],
                            sentinel_kwargs=common, db=url.get("db", 0),
                            **common, **credentials)
        primary: Redis = sentinel.master_for(cache.sentinel_service)
        return primary
    nodes = [ClusterNode(*_address(a)) for a in cache.cluster_nodes]
    return RedisCluster(startup_nodes=nodes, **common, **credentials)


def reply_seconds(cache: CacheSettings) -> float:
    """How long a reply may take: the URL's ``socket_timeout``, else :data:`SOCKET_SECONDS`."""
    timeout = parse_url(cache.url).get("socket_timeout")
    return float(timeout) if isinstance(timeout, int | float) and timeout else SOCKET_SECONDS


def limits_storage(cache: CacheSettings) -> tuple[str, dict[str, Any]]:
    """The ``limits`` storage URI of ``cache``'s Redis, and its options: limits' Redis,
    Sentinel and Cluster storages over redis-py, with what the URL sets."""
    url = urlsplit(cache.url)
    auth = url.netloc.rpartition("@")[0]
    at = f"{auth}@" if auth else ""
    options: dict[str, Any] = {"socket_timeout": SOCKET_SECONDS,
                               "socket_connect_timeout": CONNECT_SECONDS,
                               "max_connections": MAX_CONNECTIONS_UNQUEUED}
    if cache.redis_mode == "single":
        return f"async+{cache.url}", options
    if url.scheme == "rediss":
        options["ssl"] = True
    if cache.redis_mode == "sentinel":
        hosts = ",".join(cache.sentinels)
        options["sentinel_kwargs"] = {"socket_timeout": SOCKET_SECONDS,
                                      "socket_connect_timeout": CONNECT_SECONDS}
        return (f"async+redis+sentinel://{at}{hosts}/{cache.sentinel_service}"
                f"?db={parse_url(cache.url).get('db', 0)}"), options
    return f"async+redis+cluster://{at}{','.join(cache.cluster_nodes)}", options


def slot_tag(namespace: str, part: str) -> str:
    """``{namespace:part}``: keys that begin with it hash to one cluster slot (only the text in
    braces is hashed), so a script may touch several of them."""
    return f"{{{namespace}:{part}}}"


def _address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)
