"""Document limits: what a GraphQL document may be, checked before any further work.

Checked where the query is parsed (:class:`~gateway.graph.documents.DocumentCache`), before
validation, so a refused document costs a bounded parse and one linear walk, never validation,
execution or an upstream call, and is never cached:

* tokens: graphql-core's parser stops at ``max_tokens`` lexical tokens (and as many comments);
* depth: fields nested in fields, through fragments;
* aliases: in an operation with its fragments expanded (a fragment spread ten times counts ten
  times: that is how aliases multiply an answer);
* root fields: fields of an operation's root selection, through fragments;
* directives: uses anywhere in the document;
* variables: definitions in the document, entries of the request's ``variables`` map, and
  JSON values in that map (nested).

A parsed document keeps where each node came from (errors locate themselves with it), but not
the parser's tokens: graphql-core's locations hold them, a linked list of every token of the
text (two thousand objects for a document at the token limit) that every full collection of
the garbage collector would walk as long as the document is kept.

The walk is linear in the document: a fragment's counts are computed once and reused wherever
it is spread. Counts saturate at :data:`SATURATED` (fragments can multiply them
exponentially), so no count grows without bound.

A refused document raises :class:`DocumentLimitExceeded`: a ``GraphQLError`` with
``extensions: {code: DOCUMENT_LIMIT_EXCEEDED, limit: "max_aliases", max: 30, value: 41}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Location,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    Token,
)
from graphql.language.parser import Parser

from gateway.config import LimitSettings
from gateway.errors import ErrorCode
from gateway.graph.walk import collect_fields

__all__ = ["SATURATED", "DocumentLimitExceeded", "DocumentShape", "check_variables",
           "measure", "parse_within_limits"]

SATURATED = 2**53  # counts stop here: exact in JSON, and far above any limit
TOKEN_LIMIT_MESSAGE = "Document contains more than"  # graphql-core's words for max_tokens


class DocumentLimitExceeded(GraphQLError):
    """A document or variables map over one of the ``[limits]``; nothing else was done."""

    def __init__(self, limit: str, maximum: int, value: int | None, what: str) -> None:
        detail = f"{what} ({value})" if value is not None else what
        extensions: dict[str, Any] = {"code": ErrorCode.DOCUMENT_LIMIT_EXCEEDED.value,
                                      "limit": limit, "max": maximum}
        if value is not None:
            extensions["value"] = value
        super().__init__(f"the query is refused: {detail} is over the limit of {maximum} "
                         f"([limits] {limit})", extensions=extensions)
        self.limit = limit


def parse_within_limits(query: str, limits: LimitSettings) -> DocumentNode:
    """Parse ``query`` and check its shape; raises ``GraphQLError`` (a syntax error) or
    :class:`DocumentLimitExceeded`."""
    try:
        document = _parse(query, limits.max_tokens)
    except GraphQLSyntaxError as error:
        if error.message.startswith(f"Syntax Error: {TOKEN_LIMIT_MESSAGE}"):
            raise DocumentLimitExceeded("max_tokens", limits.max_tokens, None,
                                        "the number of tokens (or comments)") from None
        raise
    check_shape(measure(document), limits)
    return document


class _Parser(Parser):
    """graphql-core's parser, its nodes' locations without the tokens (see the module)."""

    def loc(self, start_token: Token) -> Location | None:
        place = Location.__new__(Location)
        place.start, place.end = start_token.start, self._lexer.last_token.end
        place.source = self._lexer.source
        return place


def _parse(query: str, max_tokens: int) -> DocumentNode:
    parser = _Parser(Source(query), max_lexical_tokens=max_tokens, max_comments=max_tokens)
    try:
        return parser.parse_document()
    except RecursionError:
        pass  # raised outside the handler, so that no frame of the recursion is kept
    raise GraphQLSyntaxError(parser._lexer.source, parser._lexer.token.start,
                             "Document is nested too deeply.")


def check_variables(variables: Mapping[str, Any] | None, limits: LimitSettings) -> None:
    """The request's ``variables`` map: at most ``max_variables`` entries and
    ``max_variable_values`` JSON values in all (counted until the limit is passed)."""
    if not variables:
        return
    if len(variables) > limits.max_variables:
        raise DocumentLimitExceeded("max_variables", limits.max_variables, len(variables),
                                    "the number of entries in `variables`")
    count = _count_values(variables, limits.max_variable_values + 1)
    if count > limits.max_variable_values:
        raise DocumentLimitExceeded("max_variable_values", limits.max_variable_values, None,
                                    "the number of values in `variables`")


def _count_values(value: Any, stop: int) -> int:
    """JSON values in ``value`` (itself included), counting no further than ``stop``."""
    count = 0
    pending = [value]
    while pending and count < stop:
        item = pending.pop()
        count += 1
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


@dataclass(frozen=True, slots=True)
class DocumentShape:
    """What the limits look at, for one document (the largest over its operations)."""

    depth: int
    aliases: int
    root_fields: int
    directives: int
    variables: int


def check_shape(shape: DocumentShape, limits: LimitSettings) -> None:
    checks = (
        ("max_depth", limits.max_depth, shape.depth, "the depth of nested fields"),
        ("max_aliases", limits.max_aliases, shape.aliases,
         "the number of aliases, fragments expanded"),
        ("max_root_fields", limits.max_root_fields, shape.root_fields,
         "the number of root fields"),
        ("max_directives", limits.max_directives, shape.directives,
         "the number of directives"),
        ("max_variables", limits.max_variables, shape.variables,
         "the number of variable definitions"),
    )
    for limit, maximum, value, what in checks:
        if value > maximum:
            raise DocumentLimitExceeded(limit, maximum, value, what)


def measure(document: DocumentNode) -> DocumentShape:
    """Depth, aliases and root fields of the largest operation, directives and variable
    definitions of the whole document."""
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    walk = _Walk(fragments)
    depth = aliases = root_fields = variables = 0
    try:
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                counts = walk.selection_set(definition.selection_set)
                depth = max(depth, counts.depth)
                aliases = max(aliases, counts.aliases)
                root_fields = max(root_fields, _root_fields(definition, fragments))
                variables += len(definition.variable_definitions or ())
                walk.directives += len(definition.directives or ()) + sum(
                    len(v.directives or ()) for v in definition.variable_definitions or ())
        for name in fragments:  # unused ones too: each is walked once, its directives counted
            walk.fragment(name)
    except RecursionError:
        depth = SATURATED  # fragments spread inside fragments beyond Python's stack
    return DocumentShape(depth, aliases, root_fields, walk.directives, variables)


@dataclass(frozen=True, slots=True)
class _Counts:
    depth: int
    aliases: int


class _Walk:
    """Counts per selection set, each fragment's computed once (memoized by name), so each
    node of the document is seen once: its directives are counted on the way."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, _Counts] = {}
        self.visiting: set[str] = set()
        self.directives = 0

    def selection_set(self, selection_set: SelectionSetNode | None) -> _Counts:
        depth = aliases = 0
        for selection in selection_set.selections if selection_set else ():
            if selection.directives:
                self.directives += len(selection.directives)
            if isinstance(selection, FieldNode):
                inner = self.selection_set(selection.selection_set)
                depth = max(depth, 1 + inner.depth)
                aliases += inner.aliases + (selection.alias is not None)
            elif isinstance(selection, InlineFragmentNode):
                inner = self.selection_set(selection.selection_set)
                depth, aliases = max(depth, inner.depth), aliases + inner.aliases
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
                depth, aliases = max(depth, inner.depth), aliases + inner.aliases
        return _Counts(min(depth, SATURATED), min(aliases, SATURATED))

    def fragment(self, name: str) -> _Counts:
        known = self.memo.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:
            return _Counts(0, 0)  # unknown or cyclic: validation reports it
        self.visiting.add(name)
        self.directives += len(fragment.directives or ())
        counts = self.memo[name] = self.selection_set(fragment.selection_set)
        self.visiting.discard(name)
        return counts



def _root_fields(operation: OperationDefinitionNode,
                 fragments: dict[str, FragmentDefinitionNode]) -> int:
    """The operation's root fields as execution collects them (the one walk: each fragment
    once, every type condition and directive read as if it applied)."""
    collected = collect_fields([operation.selection_set], fragments)
    return min(sum(len(nodes) for nodes in collected.values()), SATURATED)

