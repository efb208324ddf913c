"""Persisted operations (``[persisted]``): Apollo's automatic persisted queries, and trusted
documents.

**APQ** (``mode = "apq"``, the default; Apollo's protocol): a client sends
``extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`` (POST body, or the GET
``extensions`` parameter) without the query. An unknown hash answers the error
``PersistedQueryNotFound`` (``extensions.code`` ``PERSISTED_QUERY_NOT_FOUND``); the client then
sends the hash with the query, which is checked (the SHA-256 of the query must be the hash, else
400 ``PERSISTED_QUERY_HASH_MISMATCH``), run, and registered — only once it parsed and passed
validation (the single parse site and the schema's rules, the query-safety limits and the cost
rule among them: see :meth:`PersistedOperations.register`). Registered documents live in the
``[cache]`` store under their own key prefix: with Redis, every gateway process shares them.

**Trusted documents** (``mode = "trusted"``): only registered operations run — read at start
from ``operation_dirs`` (each ``*.graphql`` file one document, its id the SHA-256 of its text)
and ``manifests`` (Apollo's persisted-query manifest, or Relay's ``{"<id>": "<text>"}``), each
parsed and validated at start. A request names one by id (``persistedQuery.sha256Hash``) or
sends its exact text; anything else is refused with ``PERSISTED_QUERY_NOT_IN_LIST`` before any
work, so no upstream request.

The whole-response cache keys a request by its document's SHA-256 (:attr:`Persisted.hash`), so
a hash-only request is answered from it without looking the document up.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from graphql import DocumentNode, GraphQLError

from gateway.caches.bounded import ExpiringLRU
from gateway.caches.redis_client import as_cache, redis_client, slot_tag
from gateway.clock import Clock
from gateway.config import CacheSettings, PersistedSettings, is_redis_url
from gateway.errors import ErrorCode

__all__ = ["DocumentStore", "MemoryDocuments", "Persisted", "PersistedError",
           "PersistedOperations", "RedisDocuments", "TrustedDocumentError", "document_store",
           "load_trusted", "sha256"]

logger = logging.getLogger("gateway.persisted")
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_ID_LENGTH = 200
ENTRY_OVERHEAD = 200  # a kept document's key, tuple and LRU node, besides its text (tracemalloc)
REGISTRATION_BYTES = 65_536  # a registration counts one request per this much text


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PersistedError(Exception):
    """A persisted-operation request refused: as a GraphQL request error (``status`` None), or
    as an HTTP error (``status``)."""

    def __init__(self, code: ErrorCode, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def graphql_error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code.value})


@dataclass(frozen=True, slots=True)
class Persisted:
    """What a request runs: ``hash``, the SHA-256 of its document (the response cache's key
    part), and ``query`` its text — None while an APQ hash is still to be looked up;
    ``register`` when it is to be registered once it passed validation."""

    hash: str
    query: str | None
    register: bool = False


NOT_FOUND = PersistedError(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")


class PersistedOperations:
    def __init__(self, settings: PersistedSettings, *, documents: DocumentStore | None,
                 trusted: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.mode = settings.mode
        self.documents = documents
        # Trusted mode: id → text, and the SHA-256 of every registered text.
        self.trusted: dict[str, str] = dict(trusted or {})
        self._trusted_hashes = {sha256(text): text for text in self.trusted.values()}

    def read(self, params: Mapping[str, Any]) -> Persisted:
        """What ``params`` ask to run, or :class:`PersistedError` (before any other work)."""
        query = params.get("query")
        query = query if isinstance(query, str) and query.strip() else None
        extension = (params.get("extensions") or {}).get("persistedQuery")
        if extension is None:
            if query is None:
                raise PersistedError(ErrorCode.BAD_USER_INPUT,
                                     "`query` must be a non-empty string", status=400)
            digest = sha256(query)
            if self.mode == "trusted" and digest not in self._trusted_hashes:
                raise _not_in_list()
            return Persisted(digest, query)
        if self.mode == "off":
            raise PersistedError(ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED,
                                 "PersistedQueryNotSupported: this gateway keeps no persisted "
                                 "queries: send the query")
        identifier = _identifier(extension, hex_only=self.mode != "trusted")
        if self.mode == "trusted":
            text = self.trusted.get(identifier) or self._trusted_hashes.get(identifier)
            if text is None:
                raise _not_in_list()
            return Persisted(sha256(text), text)
        if query is None:
            return Persisted(identifier, None)
        if sha256(query) != identifier:
            raise PersistedError(ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
                                 "provided sha256Hash does not match the query", status=400)
        return Persisted(identifier, query, register=True)

    async def lookup(self, persisted: Persisted) -> str:
        """The text of an APQ hash-only request, or ``PersistedQueryNotFound``."""
        if persisted.query is not None:
            return persisted.query
        text = None if self.documents is None else await self.documents.get(persisted.hash)
        if text is None or sha256(text) != persisted.hash:  # never run what was not kept whole
            raise NOT_FOUND
        return text

    def registration_cost(self, persisted: Persisted) -> int:
        """The requests a registration counts against the client's budget (0: none to make)."""
        if not persisted.register or persisted.query is None or self.documents is None:
            return 0
        return max(1, math.ceil(len(persisted.query) / REGISTRATION_BYTES))

    async def register(self, persisted: Persisted) -> None:
        """Keep an APQ document. Called only once the request's document parsed and passed
        validation: the endpoint's single parse site (``DocumentCache.parse``, with the document
        limits) and the schema's rules (the cost rule among them), so those guard registration;
        and once the client's request budget took :meth:`registration_cost`."""
        if persisted.register and persisted.query is not None and self.documents is not None:
            await self.documents.put(persisted.hash, persisted.query)


# -- where registered documents are kept --------------------------------------------------------


class DocumentStore(Protocol):
    """Registered APQ documents by SHA-256, within a byte budget of their own."""

    async def get(self, digest: str) -> str | None: ...

    async def put(self, digest: str, text: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryDocuments:
    """Documents in this process: their memory at most ``max_bytes`` (least recently used out
    first), each kept ``ttl`` seconds (on ``clock``)."""

    def __init__(self, max_bytes: int, ttl: float, clock: Clock) -> None:
        self.ttl = ttl
        self.clock = clock
        self.kept: ExpiringLRU[str, str] = ExpiringLRU(max_bytes)

    async def get(self, digest: str) -> str | None:
        return self.kept.fresh(digest, self.clock.monotonic())

    async def put(self, digest: str, text: str) -> None:
        self.kept.keep(digest, text, self.clock.monotonic() + self.ttl,
                       sys.getsizeof(text) + len(digest) + ENTRY_OVERHEAD)

    async def aclose(self) -> None:
        self.kept.clear()


# Registers one document within the budget, atomically: the oldest registrations leave first
# while they are past their TTL or the new one does not fit. KEYS: the order of registration (a
# sorted set of digests by a sequence number), the entries (a hash: digest -> "size time"), the
# bytes registered (a counter) and the sequence. ARGV: the documents' key prefix, the digest,
# the text, the budget, now and the TTL (milliseconds).
REGISTER = """
local order, entries, total, sequence = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, digest, text = ARGV[1], ARGV[2], ARGV[3]
local budget, now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local size = string.len(text)
if size > budget then return 0 end
local function drop(kept)
  local entry = redis.call('HGET', entries, kept)
  if entry then redis.call('DECRBY', total, tonumber(string.match(entry, '^(%d+)'))) end
  redis.call('ZREM', order, kept)
  redis.call('HDEL', entries, kept)
  redis.call('DEL', prefix .. kept)
end
drop(digest)
while true do
  local oldest = redis.call('ZRANGE', order, 0, 0)
  if #oldest == 0 then break end
  local entry = redis.call('HGET', entries, oldest[1]) or '0 0'
  local registered = tonumber(string.match(entry, ' (%d+)$'))
  local used = tonumber(redis.call('GET', total) or '0')
  if registered > now - ttl and used + size <= budget then break end
  drop(oldest[1])
end
redis.call('SET', prefix .. digest, text, 'PX', ttl)
redis.call('ZADD', order, redis.call('INCR', sequence), digest)
redis.call('HSET', entries, digest, size .. ' ' .. now)
redis.call('INCRBY', total, size)
return 1
"""


class RedisDocuments:
    """Documents in Redis, shared by every gateway process: their texts at most ``max_bytes``
    (the oldest registration out first), each kept ``ttl`` seconds; the ones this process read
    are copied into a :class:`MemoryDocuments` of the same budget. A Redis that fails is a miss
    (the client sends its query again), logged."""

    def __init__(self, cache: CacheSettings | str, *, namespace: str, max_bytes: int,
                 ttl: float, clock: Clock) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.clock = clock
        # One hash tag: every key of the documents is in one slot of a Redis Cluster, where the
        # registering script may touch them together.
        self.prefix = f"{slot_tag(namespace, 'apq2')}:"
        self.local = MemoryDocuments(max_bytes, ttl, clock)
        self._redis = redis_client(as_cache(cache))

    async def get(self, digest: str) -> str | None:
        text = await self.local.get(digest)
        if text is not None:
            return text
        try:
            raw = await self._redis.get(f"{self.prefix}doc:{digest}")
        except Exception as exc:  # a store outage must not fail a request
            logger.warning("persisted documents read failed: %s", type(exc).__name__)
            return None
        if not isinstance(raw, bytes):
            return None
        text = raw.decode("utf-8", "replace")
        await self.local.put(digest, text)
        return text

    async def put(self, digest: str, text: str) -> None:
        await self.local.put(digest, text)
        keys = [f"{self.prefix}{name}" for name in ("order", "entries", "bytes", "sequence")]
        arguments: list[str | bytes | int] = [
            f"{self.prefix}doc:", digest, text.encode(), self.max_bytes,
            round(self.clock.wall() * 1000), round(self.ttl * 1000)]
        try:
            await self._redis.eval(REGISTER, len(keys), *keys, *arguments)
        except Exception as exc:
            logger.warning("persisted documents write failed: %s", type(exc).__name__)

    async def aclose(self) -> None:
        await self.local.aclose()
        await self._redis.aclose()


def document_store(settings: PersistedSettings, *, cache: CacheSettings | str, namespace: str,
                   clock: Clock) -> DocumentStore | None:
    """Where APQ documents are kept for ``settings`` (None unless the mode is "apq")."""
    if settings.mode != "apq":
        return None
    if is_redis_url(as_cache(cache).url):
        return RedisDocuments(cache, namespace=namespace, max_bytes=settings.max_bytes,
                              ttl=settings.apq_ttl_seconds, clock=clock)
    return MemoryDocuments(settings.max_bytes, settings.apq_ttl_seconds, clock)


def _not_in_list() -> PersistedError:
    return PersistedError(ErrorCode.PERSISTED_QUERY_NOT_IN_LIST,
                          "this operation is not one of the gateway's registered operations "
                          "(trusted documents): only those run")


def _identifier(extension: Any, *, hex_only: bool) -> str:
    if (not isinstance(extension, dict) or extension.get("version") != 1
            or not isinstance(extension.get("sha256Hash"), str)):
        raise PersistedError(ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
                             "the persistedQuery extension must be {\"version\": 1, "
                             "\"sha256Hash\": \"<hex>\"}", status=400)
    identifier: str = extension["sha256Hash"]
    if (hex_only and not SHA256.fullmatch(identifier)) or not 0 < len(identifier) <= \
            MAX_ID_LENGTH:
        raise PersistedError(ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
                             "sha256Hash must be 64 lowercase hexadecimal digits", status=400)
    return identifier


# -- trusted documents, read at start -----------------------------------------------------------


class TrustedDocumentError(Exception):
    """A registered operation that cannot be used; the message names the file and the id."""


def load_trusted(settings: PersistedSettings,
                 check: Callable[[str], DocumentNode | list[GraphQLError]]) -> dict[str, str]:
    """Every registered operation, id → text, each checked by ``check`` (parse and validate:
    a document, or its errors)."""
    operations: dict[str, tuple[str, str]] = {}  # id → (text, where)
    for directory in settings.operation_dirs:
        files = sorted(Path(directory).glob("*.graphql"))
        if not files:
            raise TrustedDocumentError(f"{directory}: no *.graphql files")
        for path in files:
            text = path.read_text(encoding="utf-8")
            operations[sha256(text)] = (text, str(path))
    for manifest in settings.manifests:
        for identifier, text in _manifest(Path(manifest)):
            operations[identifier] = (text, f"{manifest} ({identifier[:16]})")
    problems = []
    for text, where in operations.values():
        outcome = check(text)
        if isinstance(outcome, list):
            problems.append(f"{where}: {outcome[0].message}")
    if problems:
        raise TrustedDocumentError("\n".join(problems))
    return {identifier: text for identifier, (text, _) in operations.items()}


def _manifest(path: Path) -> Iterable[tuple[str, str]]:
    """(id, text) of an Apollo persisted-query manifest or a Relay one."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise TrustedDocumentError(f"{path}: cannot read a JSON manifest ({exc})") from None
    if isinstance(data, dict) and data.get("format") == "apollo-persisted-query-manifest":
        if data.get("version") != 1 or not isinstance(data.get("operations"), list):
            raise TrustedDocumentError(f"{path}: an Apollo manifest of version 1 has a list of "
                                       "operations")
        for operation in data["operations"]:
            if not (isinstance(operation, dict) and isinstance(operation.get("id"), str)
                    and isinstance(operation.get("body"), str)):
                raise TrustedDocumentError(f"{path}: every operation has a string id and body")
            yield operation["id"], operation["body"]
    elif isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        yield from data.items()  # Relay: {"<id>": "<query text>"}
    else:
        raise TrustedDocumentError(f"{path}: neither an Apollo persisted-query manifest nor a "
                                   "Relay one ({\"<id>\": \"<query text>\"})")
