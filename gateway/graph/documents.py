"""The single parse site: each new GraphQL document is parsed once and kept in one cache.

The endpoint parses a request's query here (to pick its operation before executing it), and the
schema's :class:`ParsedDocuments` extension hands the same parsed document to execution, so
strawberry never parses it again. Limits on documents belong here, before any further work.

Example::

    documents = DocumentCache()
    schema = build_schema(documents=documents)
    document = documents.parse("{ sources { id } }")  # GraphQLError when it does not parse
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

from gateway.bounded import BoundedDict

__all__ = ["DEFAULT_MAX_DOCUMENTS", "DocumentCache", "ParsedDocuments"]

DEFAULT_MAX_DOCUMENTS = 256


class DocumentCache:
    """Parsed documents by query text; at most ``max_entries``, oldest out first.

    Only documents that parse are kept: a syntax error is raised (a ``GraphQLError``) each time.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_DOCUMENTS) -> None:
        self._documents: BoundedDict[str, DocumentNode] = BoundedDict(max_entries)

    def parse(self, query: str) -> DocumentNode:
        document = self._documents.get(query)
        if document is None:
            document = parse(query)
            self._documents.put(query, document)
        return document


class ParsedDocuments(SchemaExtension):
    """Gives execution the document from the :class:`DocumentCache` (strawberry then skips its
    own parse). A document that does not parse is left to strawberry, which reports why."""

    def __init__(self, *, documents: DocumentCache) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            # A syntax error is left to strawberry's own parse, which reports it.
            with contextlib.suppress(GraphQLError):
                context.graphql_document = self.documents.parse(context.query)
        yield
