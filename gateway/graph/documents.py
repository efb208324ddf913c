"""The single parse site: each GraphQL document is checked against the ``[limits]`` and parsed
once, and only accepted documents are kept, within a bound in bytes.

The endpoint parses a request's query here (to pick its operation before executing it); the
schema's :class:`ParsedDocuments` extension hands the same parsed document to execution (strawberry
never parses it again) and validates it once per document, keeping the verdict on the
document's entry. A document is *accepted* once it passed validation, the cost rule included:
only then is it kept. A document refused by a limit costs a bounded parse and is not kept; one
that fails validation is not kept either, so no stream of distinct bad documents can push the
good ones out.

Admitting a document not kept (parsing it, validating it) is synchronous CPU work, bounded by
the document limits; requests take turns at it (:meth:`DocumentCache.admit`): one new document
at a time is parsed and validated (with the rules of the last validation, whose verdict
execution then finds), the others wait in line without holding the event loop, so a stream of
new documents delays the other requests by one admission at most, never by the whole queue.

The cache is bounded by an estimate of the memory each entry holds (its text, tokens and
nodes, and the plans compiled for it): ``len(query) * BYTES_PER_CHARACTER + ENTRY_OVERHEAD``,
least recently used out first. Whatever keeps something per document (the compiled plans)
subscribes with :meth:`DocumentCache.on_evict` and drops it with the entry.

Example::

    documents = DocumentCache(LimitSettings())
    schema = build_schema(documents=documents)
    document = documents.parse("{ sources { id } }")  # GraphQLError when refused
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OverlappingFieldsCanBeMergedRule,
    ValidationContext,
)
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from gateway.caches.bounded import ByteBoundedLRU
from gateway.config import LimitSettings
from gateway.graph.limits import DocumentLimitExceeded, parse_within_limits
from gateway.graph.strawberry_internals import graphql_schema

__all__ = ["BYTES_PER_CHARACTER", "ENTRY_OVERHEAD", "DocumentCache", "ParsedDocuments"]

# Measured with tracemalloc over the test suite's documents (tests/graph/test_documents.py
# keeps it honest): a parsed document with its token list and a compiled plan holds 40-160
# bytes per character of its text, plus a few KB however small it is.
BYTES_PER_CHARACTER = 160
ENTRY_OVERHEAD = 16_384
MAX_VERDICTS = 4  # validations kept per document (a new one when the cost model's prices move)

Rules = tuple[type[ASTValidationRule], ...]
RequestCheck = Callable[[GraphQLSchema, DocumentNode, str | None, Mapping[str, Any] | None],
                        list[GraphQLError]]

# The document this task parsed last: the endpoint parses, then execution (same task) asks
# again, before the document is accepted and kept; and the verdict of this task's last
# validation (a document validated ahead but not kept: it failed, or is larger than the cache).
_parsed: ContextVar[tuple[DocumentCache, str, DocumentNode] | None] = ContextVar(
    "gateway_parsed_document", default=None)
_last_verdict: ContextVar[tuple[DocumentNode, Rules, list[GraphQLError]] | None] = ContextVar(
    "gateway_last_verdict", default=None)


@dataclass(eq=False)
class _Entry:
    document: DocumentNode
    size: int
    verdicts: list[Rules] = field(default_factory=list)  # rules it passed


class DocumentCache:
    """Accepted documents by query text, bounded by estimated bytes (LRU)."""

    def __init__(self, limits: LimitSettings | None = None, *,
                 max_bytes: int | None = None) -> None:
        self.limits = limits or LimitSettings()
        self.max_bytes = self.limits.document_cache_bytes if max_bytes is None else max_bytes
        self._entries: ByteBoundedLRU[str, _Entry] = ByteBoundedLRU(
            self.max_bytes, on_evict=lambda _, entry: self._evicted(entry))
        self._listeners: list[Callable[[DocumentNode], None]] = []
        self._merging = _bounded_merging(self.limits.max_validation_work)
        self.parses = 0  # documents parsed (not served from the cache)
        self._turns: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._rules: Rules | None = None  # what documents were last validated with
        self._request_checks: list[RequestCheck] = []

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The estimated bytes of the documents kept."""
        return self._entries.bytes

    def __contains__(self, query: object) -> bool:
        return query in self._entries

    def holds(self, document: DocumentNode) -> bool:
        """Whether ``document`` is a kept (accepted) document."""
        entry = self._entries.peek(_query_of(document))
        return entry is not None and entry.document is document

    def check_requests(self, check: RequestCheck) -> None:
        """Also run ``check(schema, document, operation_name, variables)`` on every request
        whose document passed validation: what validation cannot know before the request
        (the cost rule's prices of page sizes sent as variables). Its errors refuse the
        request as validation errors do."""
        if check not in self._request_checks:
            self._request_checks.append(check)

    def check_request(self, schema: GraphQLSchema, document: DocumentNode,
                      operation_name: str | None, variables: Mapping[str, Any] | None
                      ) -> list[GraphQLError]:
        """The first errors of the request checks (:meth:`check_requests`), or none."""
        for check in self._request_checks:
            errors = check(schema, document, operation_name, variables)
            if errors:
                return errors
        return []

    def on_evict(self, listener: Callable[[DocumentNode], None]) -> None:
        """Call ``listener(document)`` whenever a kept document leaves the cache."""
        self._listeners.append(listener)

    def parse(self, query: str) -> DocumentNode:
        """The parsed document, checked against the limits (the request's ``variables`` are
        bounded at the edge, before anything: :meth:`gateway.edge.admission.Admission.read`).

        Raises ``GraphQLError``: a syntax error, or a
        :class:`~gateway.graph.limits.DocumentLimitExceeded`. Nothing refused is kept.
        """
        entry = self._entries.get(query)
        if entry is not None:
            return entry.document
        last = _parsed.get()
        if last is not None and last[0] is self and last[1] == query:
            return last[2]
        document = parse_within_limits(query, self.limits)
        self.parses += 1
        _parsed.set((self, query, document))
        return document

    async def admit(self, query: str, schema: GraphQLSchema | None = None) -> DocumentNode:
        """:meth:`parse`; a document not kept is parsed, and validated against ``schema``,
        in its turn (see the module's docstring)."""
        if query in self._entries:
            return self.parse(query)
        async with self._turn():
            document = self.parse(query)
            rules = self._rules
            if schema is not None and rules is not None:
                with contextlib.suppress(RecursionError):
                    self.validate(schema, document, rules)
            return document

    def _turn(self) -> asyncio.Lock:
        """The line new documents wait in (one per event loop: a lock belongs to one)."""
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            self._turns = (loop, asyncio.Lock())
        return self._turns[1]

    def _verdict(self, document: DocumentNode, rules: Rules) -> bool:
        """Whether ``document`` is kept and passed ``rules``."""
        entry = self._entries.peek(_query_of(document))
        return entry is not None and entry.document is document and rules in entry.verdicts

    def validate(self, schema: GraphQLSchema, document: DocumentNode, rules: Rules
                 ) -> list[GraphQLError]:
        """Validation errors of ``document`` (strawberry's rules added), once per document and
        rules; a document that passes is accepted and kept, one that fails is dropped."""
        if self._verdict(document, rules):
            return []
        last = _last_verdict.get()
        if last is not None and last[0] is document and last[1] == rules:
            return last[2]
        self._rules = rules
        query = _query_of(document)
        bounded = tuple(self._merging if r is OverlappingFieldsCanBeMergedRule else r
                        for r in rules)
        errors = [self._aborted(e) for e in validate_document(schema, document, bounded)]
        if errors:
            self._drop(query)
        else:
            self._accept(query, document, rules)
        _last_verdict.set((document, rules, errors))
        return errors

    def refusal(self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None,
                variables: Mapping[str, Any] | None) -> list[GraphQLError]:
        """What refuses this request's document, as far as it is known before execution: its
        validation (when it was validated ahead, with the rules of the last validation) and
        the request checks. Execution validates a document that was not."""
        rules = self._rules
        if rules is None:
            return []
        if self._verdict(document, rules):
            errors = []
        else:
            last = _last_verdict.get()
            if last is None or last[0] is not document or last[1] != rules:
                return []
            errors = last[2]
        return errors or self.check_request(schema, document, operation_name, variables)

    def _aborted(self, error: GraphQLError) -> GraphQLError:
        """graphql-core gave up (its work budget, or fragments nested beyond the stack): the
        document is over a limit, not wrong."""
        if isinstance(error, ValidationAbortedError) and error.message == "Validation aborted.":
            maximum = self.limits.max_validation_work
            return DocumentLimitExceeded("max_validation_work", maximum, None,
                                         "the work its validation needs")
        return error

    def _accept(self, query: str, document: DocumentNode, rules: Rules) -> None:
        entry = self._entries.get(query)
        if entry is None or entry.document is not document:
            self._drop(query)
            size = len(query) * BYTES_PER_CHARACTER + ENTRY_OVERHEAD
            if size > self.max_bytes:
                return  # larger than the whole cache: parsed again each time
            entry = _Entry(document, size)
            self._entries.put(query, entry, size)
        entry.verdicts = [*entry.verdicts[-(MAX_VERDICTS - 1):], rules]

    def _drop(self, query: str) -> None:
        entry = self._entries.pop(query)
        if entry is not None:
            self._evicted(entry)

    def _evicted(self, entry: _Entry) -> None:
        for listener in self._listeners:
            listener(entry.document)


def _bounded_merging(budget: int) -> type[ASTValidationRule]:
    """graphql-core's field merging rule with its own work budget (its knob is a global)."""
    class BoundedFieldMerging(OverlappingFieldsCanBeMergedRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.rule_context.remaining_complexity_budget = budget

    return BoundedFieldMerging


def _query_of(document: DocumentNode) -> str:
    """The text a document was parsed from (graphql-core keeps it on the location)."""
    loc = document.loc
    return loc.source.body if loc is not None else ""


class ParsedDocuments(SchemaExtension):
    """Gives execution the document from the :class:`DocumentCache` (strawberry then skips its
    own parse) and validates it there, once per document (strawberry then skips its own
    validation). A syntax error is left to strawberry, which reports it; a document over a
    limit is refused with its :class:`~gateway.graph.limits.DocumentLimitExceeded`."""

    def __init__(self, *, documents: DocumentCache) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            try:
                context.graphql_document = self.documents.parse(context.query)
            except GraphQLError as error:
                if error.extensions and "code" in error.extensions:
                    raise  # a limit: strawberry must not parse it either
                # A syntax error is left to strawberry's own parse, which reports it.
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors is None and document is not None:
            schema = graphql_schema(context.schema)
            with contextlib.suppress(RecursionError):
                context.pre_execution_errors = self.documents.validate(
                    schema, document, context.validation_rules) or self.documents.check_request(
                    schema, document, context.operation_name, context.variables)
        yield
