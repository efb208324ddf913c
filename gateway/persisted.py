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
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLError

from gateway.bounded import BoundedDict
from gateway.clock import Clock
from gateway.config import PersistedSettings
from gateway.errors import ErrorCode
from gateway.upstream.store import CachedAnswer, ResponseStore

__all__ = ["Persisted", "PersistedError", "PersistedOperations", "TrustedDocumentError",
           "load_trusted", "sha256"]

KEY_PREFIX = "apq1:"  # in the [cache] store, beside the upstream answers
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_ID_LENGTH = 200
LOCAL_DOCUMENTS = 1024  # registered documents this process remembers without the store
MEDIA_TYPE = "application/graphql"


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
    def __init__(self, settings: PersistedSettings, *, store: ResponseStore | None,
                 clock: Clock, trusted: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.mode = settings.mode
        self.store = store
        self.clock = clock
        # Trusted mode: id → text, and the SHA-256 of every registered text.
        self.trusted: dict[str, str] = dict(trusted or {})
        self._trusted_hashes = {sha256(text): text for text in self.trusted.values()}
        self._local: BoundedDict[str, str] = BoundedDict(LOCAL_DOCUMENTS)

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
            return Persisted(identifier, self._local.get(identifier))
        if sha256(query) != identifier:
            raise PersistedError(ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
                                 "provided sha256Hash does not match the query", status=400)
        return Persisted(identifier, query, register=identifier not in self._local)

    async def lookup(self, persisted: Persisted) -> str:
        """The text of an APQ hash-only request, or ``PersistedQueryNotFound``."""
        if persisted.query is not None:
            return persisted.query
        answer = None if self.store is None else await self.store.get(KEY_PREFIX + persisted.hash)
        if answer is None:
            raise NOT_FOUND
        text = answer.body.decode()
        if sha256(text) != persisted.hash:  # never run what the store did not keep whole
            raise NOT_FOUND
        self._local.put(persisted.hash, text)
        return text

    async def register(self, persisted: Persisted) -> None:
        """Keep an APQ document. Called only once the request's document parsed and passed
        validation: the endpoint's single parse site (``DocumentCache.parse``, with the document
        limits) and the schema's rules (the cost rule among them), so those guard registration."""
        if not persisted.register or persisted.query is None:
            return
        self._local.put(persisted.hash, persisted.query)
        if self.store is not None:
            answer = CachedAnswer(round(self.clock.wall(), 3), 200, MEDIA_TYPE,
                                  persisted.query.encode())
            await self.store.set(KEY_PREFIX + persisted.hash, answer,
                                 self.settings.apq_ttl_seconds)


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
