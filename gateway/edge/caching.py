"""The whole-response cache at the edge: a request's key, computed once; hits with ``Age``,
``ETag`` and ``Cache-Control``; a ``304`` for a matching ``If-None-Match``; and what is kept.

With a :class:`~gateway.caches.responses.ResponseCache`, a repeated request is answered from it
before any parsing (``X-Response-Cache: hit``, with ``Age``); a fresh answer without errors or
stale data is kept (``X-Response-Cache: miss``). A ``GET`` answer that can be kept carries an
``ETag`` and ``Cache-Control: max-age`` (``private`` unless configured ``public``, and always
``private`` for an authenticated client or one with its own upstream credentials), and a matching
``If-None-Match`` gets 304 with no body; other ``GET`` answers say ``no-store``.

The key is the document's SHA-256, the operation name, the variables, what each source answers
in for the request's ``Accept-Language``, the client's identity and the fingerprints of its own
upstream credentials: clients never see each other's answers. A request asking for
``extensions.cost`` and a stream are never answered from the cache nor kept.

When the cache is off, :class:`NoResponseCache` stands in: it never answers and keeps nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from graphql import OperationType, get_operation_ast

from gateway.access.auth import Client
from gateway.caches.bounded import BoundedDict
from gateway.caches.responses import CachedResponse, ResponseCache
from gateway.clock import Clock
from gateway.credentials import Credential
from gateway.edge.admission import Operation
from gateway.edge.bodies import Reply
from gateway.edge.persisted import Persisted
from gateway.edge.request import GraphQLRequest
from gateway.errors import BadUserInput
from gateway.observability.metrics import Metrics
from gateway.scope import RequestScope
from gateway.sources import SourceAdapter

__all__ = ["Caching", "NoResponseCache", "ResponseCaching"]

LANGUAGE_KEYS = 1024  # Accept-Language values whose sources' languages are kept
HEADS = 1024  # kept answers whose headers are kept written (a hit's, over POST)


class NoResponseCache:
    """The response cache when it is off: no request has a key."""

    def key(self, request: GraphQLRequest, persisted: Persisted, client: Client,
            credentials: Mapping[str, Credential]) -> str | None:
        return None

    async def hit(self, key: str, request: GraphQLRequest, *, private: bool) -> Reply | None:
        return None

    async def keep(self, key: str, reply: Reply, operation: Operation, scope: RequestScope,
                   request: GraphQLRequest, *, private: bool) -> Reply | None:
        return None


class ResponseCaching(NoResponseCache):
    """The response cache in front of the GraphQL work."""

    def __init__(self, responses: ResponseCache, *, adapters: Mapping[str, SourceAdapter],
                 clock: Clock, vary: Iterable[str], metrics: Metrics | None = None) -> None:
        self.responses = responses
        self.excluded = responses.settings.exclude_operations
        self.public = responses.settings.public
        self.adapters = adapters
        self.clock = clock
        self.vary = ", ".join(vary)
        self.metrics = metrics
        self._language_keys: BoundedDict[str | None, str] = BoundedDict(LANGUAGE_KEYS)
        self._heads: BoundedDict[tuple[str, str, str], list[tuple[bytes, bytes]]] = BoundedDict(
            HEADS)

    def key(self, request: GraphQLRequest, persisted: Persisted, client: Client,
            credentials: Mapping[str, Credential]) -> str | None:
        """The request's key; None when its answers are not kept (an excluded operation, or an
        ``Accept-Language`` the request's scope refuses, with its own error).

        The document is named by its SHA-256 (a hash-only APQ request needs no lookup). The
        language part is what each source answers in (a source that ignores languages adds
        nothing), so clients whose headers differ but choose the same languages share answers.
        """
        name = request.params.get("operationName")
        if name in self.excluded:
            return None
        language = self._language_key(request.headers.get("accept-language"))
        if language is None:
            return None
        own = " ".join(f"{source}={credential.fingerprint}"
                       for source, credential in sorted(credentials.items()))
        return self.responses.key(f"sha256:{persisted.hash}", name,
                                  request.params.get("variables"), language=language,
                                  client=f"{client.identity}\n{own}")

    async def hit(self, key: str, request: GraphQLRequest, *, private: bool) -> Reply | None:
        """The kept answer for ``key`` (or its 304), or None."""
        entry = await self.responses.get(key)
        if self.metrics is not None:
            (self.metrics.response_miss if entry is None else self.metrics.response_hit).inc()
        if entry is None:
            return None
        return self._reply(entry, "hit", request, private=private)

    async def keep(self, key: str, reply: Reply, operation: Operation, scope: RequestScope,
                   request: GraphQLRequest, *, private: bool) -> Reply | None:
        """Keep a fresh answer without errors or stale data (the caller knows which) of a query
        not excluded by name: the reply to send then, or None when nothing was kept."""
        if not self._keeps(operation):
            return None
        entry = await self.responses.put(key, reply.body, fresh_until=scope.fresh_until)
        if entry is None:
            return None
        return self._reply(entry, "miss", request, private=private)

    def _reply(self, entry: CachedResponse, outcome: str, request: GraphQLRequest, *,
               private: bool) -> Reply:
        """A kept answer: from the cache (``hit``) or just kept (``miss``). ``private``: the
        answer is one client's (authenticated, or with its own credentials), never public."""
        now = self.clock.wall()
        age = str(max(0, int(now - entry.stored_at))) if outcome == "hit" else None
        media_type = request.media_type
        if request.method != "GET":  # the same headers each time but Age: written once
            head = self._heads.get((entry.etag, media_type, outcome))
            if head is None:
                head = Reply(entry.body, media_type=media_type, headers={
                    "X-Response-Cache": outcome, "Vary": self.vary}).raw_headers
                self._heads.put((entry.etag, media_type, outcome), head)
            reply = Reply.prepared(entry.body, head)
            if age is not None:
                reply.header("Age", age)
            return reply
        answer = {"X-Response-Cache": outcome, "Vary": self.vary}
        if age is not None:
            answer["Age"] = age
        answer["ETag"] = entry.etag  # a GET's answer may be kept by the client and proxies too
        answer["Cache-Control"] = (f"{'public' if self.public and not private else 'private'}"
                                   f", max-age={entry.max_age(now)}")
        if entry.etag in _etags(request.headers.get("if-none-match", "")):
            return Reply(status=304, media_type=None, headers=answer)
        return Reply(entry.body, media_type=media_type, headers=answer)

    def _keeps(self, operation: Operation) -> bool:
        """A query (the admission found exactly one operation to run), not excluded by name."""
        if operation.kind is not OperationType.QUERY:
            return False
        definition = get_operation_ast(operation.document, operation.name)
        name = definition.name if definition is not None else None
        return name is None or name.value not in self.excluded

    def _language_key(self, header: str | None) -> str | None:
        """What each source answers in for this ``Accept-Language`` (a source that ignores
        languages: "-"), kept per header value (clients send few); None for a bad header."""
        key = self._language_keys.get(header)
        if key is None:
            scope = RequestScope(language=header)
            try:
                key = " ".join(adapter.language(scope) or "-"
                               for adapter in self.adapters.values())
            except BadUserInput:
                return None
            self._language_keys.put(header, key)
        return key


Caching = NoResponseCache | ResponseCaching


def _etags(header: str) -> set[str]:
    """The entity tags an ``If-None-Match`` names (weak ones compare by their opaque tag)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
