"""The document cache: only accepted documents, bounded by estimated bytes, least recently used
out first; validation kept with the document; plans dropped with it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tracemalloc
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    specified_rules,
)

from gateway.config import LimitSettings
from gateway.graph import build_schema
from gateway.graph.compiled import PlanCache
from gateway.graph.documents import BYTES_PER_CHARACTER, ENTRY_OVERHEAD, DocumentCache
from gateway.graph.limits import DocumentLimitExceeded, parse_within_limits
from gateway.graph.plan import BadDirective
from gateway.graph.planner import Unsupported, build_plan
from gateway.graph.strawberry_internals import graphql_schema
from tests.corpus import CORPUS

SCHEMA = graphql_schema(build_schema())
RULES = tuple(specified_rules)


def query(n: int) -> str:
    return f"{{ sources {{ id }} n{n}: sources {{ kind }} }}"


def size_of(text: str) -> int:
    return len(text) * BYTES_PER_CHARACTER + ENTRY_OVERHEAD


def accepted(cache: DocumentCache, text: str) -> DocumentNode:
    document = cache.parse(text)
    assert cache.validate(SCHEMA, document, RULES) == []
    return document


def in_new_task(call: Any) -> Any:
    """Run ``call`` in a fresh context, as each HTTP request runs in its own task."""
    async def run() -> Any:
        return call()

    return asyncio.run(run())


def test_a_parsed_document_is_kept_only_once_it_passes_validation() -> None:
    cache = DocumentCache()
    document = cache.parse(query(1))
    assert query(1) not in cache and cache.bytes == 0
    # The same task asks again (the endpoint, then execution): the same object, no new parse.
    assert cache.parse(query(1)) is document and cache.parses == 1
    cache.validate(SCHEMA, document, RULES)
    assert query(1) in cache and cache.bytes == size_of(query(1))
    assert in_new_task(lambda: cache.parse(query(1))) is document
    assert cache.parses == 1


def test_a_document_that_fails_validation_is_not_kept() -> None:
    cache = DocumentCache()
    bad = "{ sources { nope } }"
    errors = cache.validate(SCHEMA, cache.parse(bad), RULES)
    assert errors and bad not in cache and cache.bytes == 0


def test_a_document_over_a_limit_is_not_kept_nor_parsed_whole() -> None:
    cache = DocumentCache(LimitSettings(max_tokens=100))
    with pytest.raises(DocumentLimitExceeded):
        cache.parse("{ sources { " + "id " * 5000 + "} }")
    assert len(cache) == 0 and cache.parses == 0


def test_the_cache_is_bounded_by_bytes_least_recently_used_out_first() -> None:
    cache = DocumentCache(max_bytes=3 * size_of(query(1)))
    for n in range(1, 4):
        in_new_task(lambda n=n: accepted(cache, query(n)))
    in_new_task(lambda: cache.parse(query(1)))  # 1 is used again: 2 is now the oldest
    in_new_task(lambda: accepted(cache, query(4)))
    assert [query(n) in cache for n in range(1, 5)] == [True, False, True, True]
    assert cache.bytes == 3 * size_of(query(1)) <= cache.max_bytes


def test_a_document_larger_than_the_whole_cache_is_never_kept() -> None:
    cache = DocumentCache(max_bytes=size_of(query(1)) - 1)
    document = accepted(cache, query(1))
    assert len(cache) == 0 and not cache.holds(document)


def test_a_validation_is_kept_per_rules() -> None:
    cache = DocumentCache()
    calls: list[int] = []

    class Counting(specified_rules[0]):  # type: ignore[misc, valid-type]
        def __init__(self, context: Any) -> None:
            calls.append(1)
            super().__init__(context)

    document = cache.parse(query(1))
    for _ in range(3):
        assert cache.validate(SCHEMA, document, (*RULES, Counting)) == []
    assert len(calls) == 1
    cache.validate(SCHEMA, document, RULES)  # other rules (new prices): validated again, once
    assert cache.validate(SCHEMA, document, RULES) == []


def test_a_document_refused_under_new_rules_leaves_the_cache() -> None:
    cache = DocumentCache()
    document = accepted(cache, query(1))

    class Refuse(specified_rules[0]):  # type: ignore[misc, valid-type]
        def enter_document(self, *_: Any) -> None:
            self.report_error(GraphQLError("no"))

    assert cache.validate(SCHEMA, document, (*RULES, Refuse))
    assert query(1) not in cache and cache.bytes == 0


def test_plans_are_kept_only_for_kept_documents_and_leave_with_them() -> None:
    cache = DocumentCache(max_bytes=2 * size_of(query(1)))
    plans = PlanCache(documents=cache)
    documents = [in_new_task(lambda n=n: accepted(cache, query(n))) for n in range(1, 3)]
    for document in documents:
        asyncio.run(plans.execute(SCHEMA, document, None, None, root_value=None, context=None))
    assert len(plans) == 2
    in_new_task(lambda: accepted(cache, query(3)))  # pushes the first document out
    assert len(plans) == 1
    # A document the cache does not keep gets a plan for its request only.
    loose = in_new_task(lambda: cache.parse(query(9)))
    asyncio.run(plans.execute(SCHEMA, loose, None, None, root_value=None, context=None))
    assert len(plans) == 1 and plans.runs["compiled"] == 3


def test_the_size_estimate_covers_a_document_and_its_plan() -> None:
    """Measured: what a parsed document and its compiled plans hold is within the estimate
    (garbage made on the way is counted too: the collector is off while measuring)."""
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        for text in CORPUS:
            # The least of three measures: tracemalloc also counts what other threads of the
            # process (servers a test before left running) allocate meanwhile.
            held = min(_held(text) for _ in range(3))
            assert held <= size_of(text), (held, size_of(text), text)
    finally:
        tracemalloc.stop()
        gc.enable()


def _held(text: str) -> int:
    """The bytes a parsed copy of ``text`` and its plans hold."""
    before = tracemalloc.get_traced_memory()[0]
    copy = "".join(text)  # the cache keeps its own text
    document = parse_within_limits(copy, LimitSettings())
    kept = [document, *_plans(document)]
    held = tracemalloc.get_traced_memory()[0] - before
    del kept
    return held


def _plans(document: DocumentNode) -> list[Any]:
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    plans = []
    for operation in document.definitions:
        if isinstance(operation, OperationDefinitionNode):
            with contextlib.suppress(Unsupported, BadDirective, GraphQLError):
                plans.append(build_plan(SCHEMA, operation, fragments, {}))
    return plans


def test_the_work_of_validating_is_bounded() -> None:
    # 490 mergeable `parent` fields: graphql-core compares every pair (~1 s of CPU under its
    # own budget); here the configured budget stops it within milliseconds.
    cache = DocumentCache()
    document = cache.parse("{ productGroups { nodes { " + "parent { name } " * 490 + "} } }")
    errors = cache.validate(SCHEMA, document, RULES)
    assert [e.extensions for e in errors] == [{
        "code": "DOCUMENT_LIMIT_EXCEEDED", "limit": "max_validation_work",
        "max": LimitSettings().max_validation_work}]
    assert len(cache) == 0
    for text in CORPUS:  # far below it
        assert in_new_task(lambda text=text: cache.validate(SCHEMA, cache.parse(text), RULES)) \
            == [], text
