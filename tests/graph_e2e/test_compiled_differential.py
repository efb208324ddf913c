"""Compiled execution answers exactly what graphql-core's executor answers.

Two gateways over the same emulators, one compiling known operations and one executing every
operation with graphql-core, get the same requests: every published operation, the README's
examples, every GraphQL document written in the test suite, and generated operations
(hypothesis-graphql over our schema, with some literal arguments moved into variables) — with
healthy sources and with failing ones. Data (key order included), errors (message, path,
locations, extensions; compared in path order, as the order of errors from concurrent fields
is timing) and extensions must be equal. Deadlines are long: a request that runs out of time
on a busy machine is timing, not a difference between the executors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from graphql import (
    ArgumentNode,
    DocumentNode,
    NamedTypeNode,
    NameNode,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    parse,
    print_ast,
    value_from_ast_untyped,
    visit,
)
from graphql.utilities import ast_from_value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries

from gateway.config import Config
from gateway.demo import demo_config
from gateway.edge.app import GatewayApp, create_app
from gateway.edge.serving import ServerThread
from gateway.emulators.common import Fault
from gateway.graph.compiled import PlanCache
from tests.conftest import UNCACHED, RunningEmulator
from tests.corpus import CORPUS, DATES, SCHEMA, published_operations
from tests.graph_e2e.incremental_client import DEFER_SPEC, INCREMENTAL_SPEC, fetch, merged

Emulators = dict[str, RunningEmulator]


class Pair:
    """The two gateways, and the compiled one's plan statistics."""

    def __init__(self, compiled_url: str, standard_url: str, plans: PlanCache) -> None:
        self.client = httpx.Client(timeout=60)
        self.compiled_url, self.standard_url, self.plans = compiled_url, standard_url, plans

    def answers(self, query: str, variables: dict[str, Any] | None = None
                ) -> tuple[Any, Any]:
        payload = {"query": query, "variables": variables}
        compiled = self.client.post(f"{self.compiled_url}/graphql", json=payload)
        standard = self.client.post(f"{self.standard_url}/graphql", json=payload)
        assert compiled.status_code == standard.status_code, (compiled.text[:2000],
                                                              standard.text[:2000])
        return normalised(compiled.json()), normalised(standard.json())

    def assert_same(self, query: str, variables: dict[str, Any] | None = None) -> None:
        compiled, standard = self.answers(query, variables)
        if root_nulled(compiled) and root_nulled(standard):
            # Several non-null root fields failed: which failure nulls `data` first is timing on
            # graphql-core's side too (it cancels the rest). Same code and a root path suffice.
            for answer in (compiled, standard):
                answer["errors"] = [{"code": e["extensions"]["code"]} for e in answer["errors"]]
        assert compiled == standard, f"differs for:\n{query}\nvariables: {variables}"


def root_nulled(body: dict[str, Any]) -> bool:
    errors = body.get("errors") or []
    return body.get("data") == "null" and len(errors) == 1 and len(errors[0].get("path") or ()) == 1


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """The answer with its errors in path order; data keeps its own key order (compared as
    JSON text, so a different key order is a difference)."""
    out = dict(body)
    if "data" in out:
        out["data"] = json.dumps(out["data"])
    if "errors" in out:
        out["errors"] = sorted(out["errors"], key=lambda e: (json.dumps(e.get("path")),
                                                              e.get("message", "")))
    return out


def served(config: Config, *, compiled: bool, federation: bool) -> GatewayApp:
    """A gateway that executes every request (no response cache), compiling known operations or
    not."""
    return create_app(config.model_copy(update={
        "response_cache": config.response_cache.model_copy(update={"enabled": False}),
        "server": config.server.model_copy(update={
            "compiled_execution": compiled, "federation": federation, "access_log": False})}))


@contextmanager
def serving_pair(emulators: Emulators, *, federation: bool = False) -> Iterator[Pair]:
    # One configuration for both: the same cursor secret, long deadlines, no upstream cache.
    config = demo_config({kind: e.url for kind, e in emulators.items()},
                         defaults=UNCACHED, request_timeout=120)
    compiled = served(config, compiled=True, federation=federation)
    standard = served(config, compiled=False, federation=federation)
    with ServerThread({"compiled": compiled, "standard": standard}) as servers:
        pair = Pair(servers.urls["compiled"], servers.urls["standard"], compiled.state.plans)
        try:
            yield pair
        finally:
            pair.client.close()


@pytest.fixture(scope="module")
def pair(emulator_servers: Emulators) -> Iterator[Pair]:
    with serving_pair(emulator_servers) as served_pair:
        yield served_pair


@pytest.fixture
def faults(emulator_servers: Emulators) -> Iterator[Emulators]:
    yield emulator_servers
    for running in emulator_servers.values():
        running.faults.clear()


def test_the_corpus_is_large() -> None:
    assert len(published_operations()) >= 5
    assert len(CORPUS) >= 60, len(CORPUS)


def test_every_corpus_document_answers_the_same(pair: Pair) -> None:
    before = pair.plans.runs.copy()
    for query in CORPUS:
        pair.assert_same(query)
    # The compiled path really ran: only introspection is left to graphql-core.
    runs = pair.plans.runs - before
    introspection = sum("__schema" in q or "__type(" in q for q in CORPUS)
    several = sum(len([d for d in parse(q).definitions
                       if isinstance(d, OperationDefinitionNode)]) > 1 for q in CORPUS)
    assert runs["standard"] == introspection
    # Documents with several operations and no operationName are refused before executing.
    assert runs["compiled"] + runs["bad variables"] + runs["bad directives"] + introspection + \
        several == len(CORPUS)
    assert runs["compiled"] >= 40


@pytest.mark.parametrize("fault", [
    {"joptic": Fault(status=503), "axim": Fault(status=503)},
    {"carecloud": Fault(malformed=True), "comestri": Fault(status=500)},
    {"axim": Fault(status=401), "joptic": Fault(malformed=True), "carecloud": Fault(status=429)},
], ids=["unavailable", "malformed", "refused"])
def test_every_corpus_document_answers_the_same_with_failing_sources(
    pair: Pair, faults: Emulators, fault: dict[str, Fault]
) -> None:
    for kind, plan in fault.items():
        faults[kind].faults.set(plan)
    for query in CORPUS:
        pair.assert_same(query)


def test_variables_directives_and_type_conditions(pair: Pair) -> None:
    query = """
    query Q($n: Int!, $withProducts: Boolean!, $skipName: Boolean = false, $ids: [ID!]!) {
      productGroups(first: $n, filter: {sources: ["axim"]}) {
        totalCount
        nodes {
          __typename
          name @skip(if: $skipName)
          ...P @include(if: $withProducts)
        }
      }
      nodes(ids: $ids) { __typename id ... on ProductGroup { name } ... on Product { sku } }
    }
    fragment P on ProductGroup { products(first: 2) { nodes { sku variants { sku } } } }
    """
    ids = run_ids(pair)
    for with_products in (True, False):
        for skip_name in (True, False):
            pair.assert_same(query, {"n": 3, "withProducts": with_products,
                                     "skipName": skip_name, "ids": ids})
    # Variable errors are request errors on both paths.
    pair.assert_same(query, {"n": "three", "withProducts": True, "ids": ids})
    pair.assert_same(query, {"withProducts": True, "ids": ids})


def test_id_and_string_variables_of_every_shape(pair: Pair) -> None:
    # The compiled path takes ID and String values as given where they already have their
    # type's shape; every other value is coerced (or refused) exactly as graphql-core does.
    query = """
    query Q($ids: [ID!]!, $sources: [ID!], $one: ID!, $search: String) {
      nodes(ids: $ids) { __typename id }
      node(id: $one) { id }
      productGroups(first: 2, filter: {sources: $sources, search: $search}) {
        totalCount nodes { id } }
    }
    """
    ids = run_ids(pair)
    plain = {"ids": ids, "sources": ["axim", "carecloud"], "one": ids[1], "search": "office"}
    before = pair.plans.runs.copy()
    for variables in (
        plain,
        {**plain, "search": None},  # a nullable variable given null
        {**plain, "sources": None},
        {**plain, "ids": ids[0]},  # one value for a list: a list of it
        {**plain, "ids": [7, ids[0]]},  # an Int for an ID: its digits
        {key: value for key, value in plain.items() if key != "search"},  # not given
        {**plain, "ids": [None]},  # null in a list of non-null: refused
        {**plain, "one": None},  # null for a non-null variable: refused
        {**plain, "search": 3},  # an Int for a String: refused
        {**plain, "sources": [{"id": "axim"}]},  # an object for an ID: refused
    ):
        pair.assert_same(query, variables)
    runs = pair.plans.runs - before
    assert runs["compiled"] == 6 and runs["bad variables"] == 4, runs


def run_ids(pair: Pair) -> list[str]:
    body = pair.client.post(f"{pair.compiled_url}/graphql", json={"query": """{
      productGroups(first: 4, filter: {sources: ["axim", "carecloud"]}) {
        nodes { id products(first: 1) { nodes { id } } } } }"""}).json()
    ids = []
    for group in body["data"]["productGroups"]["nodes"]:
        ids.append(group["id"])
        ids += [p["id"] for p in (group["products"] or {"nodes": []})["nodes"]]
    return [*ids, "not-an-id", "UHJvZHVjdEdyb3VwOm5vbmU="]


def test_an_unsupported_construct_falls_back_to_the_standard_executor(pair: Pair) -> None:
    before = dict(pair.plans.runs)
    query = "{ __schema { queryType { name } } sources { id } }"
    pair.assert_same(query)
    assert pair.plans.runs["standard"] == before.get("standard", 0) + 1
    assert pair.plans.runs["compiled"] == before.get("compiled", 0)


# -- generated operations ------------------------------------------------------------------


def with_variables(document: DocumentNode, share: int) -> tuple[str, dict[str, Any]]:
    """Moves every ``share``-th literal argument into a variable of the argument's type."""
    type_info = TypeInfo(SCHEMA)
    variables: dict[str, Any] = {}
    definitions: list[VariableDefinitionNode] = []
    seen = 0

    class Mover(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: Any) -> Any:
            nonlocal seen
            argument = type_info.get_argument()
            seen += 1
            if argument is None or seen % share or isinstance(node.value, VariableNode):
                return None
            name = f"v{len(definitions)}"
            type_node = ast_from_value_type(argument.type)
            if type_node is None:
                return None
            variables[name] = value_from_ast_untyped(node.value)
            definitions.append(VariableDefinitionNode(
                variable=VariableNode(name=NameNode(value=name)), type=type_node))
            return ArgumentNode(name=node.name, value=VariableNode(name=NameNode(value=name)))

    moved = visit(document, TypeInfoVisitor(type_info, Mover()))
    operation = moved.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    operation = replace(operation, variable_definitions=(
        *(operation.variable_definitions or ()), *definitions))
    return print_ast(replace(moved, definitions=(operation, *moved.definitions[1:]))), variables


def ast_from_value_type(input_type: Any) -> Any:
    from graphql import GraphQLList, GraphQLNonNull, ListTypeNode, NonNullTypeNode

    if isinstance(input_type, GraphQLNonNull):
        inner = ast_from_value_type(input_type.of_type)
        return NonNullTypeNode(type=inner) if inner is not None else None
    if isinstance(input_type, GraphQLList):
        inner = ast_from_value_type(input_type.of_type)
        return ListTypeNode(type=inner) if inner is not None else None
    return NamedTypeNode(name=NameNode(value=input_type.name))


assert ast_from_value is not None  # graphql-core's own printing of values is what we mirror


@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(query=queries(SCHEMA, custom_scalars={"DateTime": DATES}, allow_x00=False),
       share=st.sampled_from([1, 2, 3, 1000]))
def test_generated_operations_answer_the_same(pair: Pair, query: str, share: int) -> None:
    text, variables = with_variables(parse(query), share)
    pair.assert_same(text, variables or None)


@pytest.fixture(scope="module")
def federated_pair(emulator_servers: Emulators) -> Iterator[Pair]:
    with serving_pair(emulator_servers, federation=True) as served_pair:
        yield served_pair


def test_federation_entities_answer_the_same(federated_pair: Pair) -> None:
    ids = run_ids(federated_pair)
    query = """query ($r: [_Any!]!) { _entities(representations: $r) {
      __typename ... on ProductGroup { id name parent { name } } ... on Product { id sku } } }"""
    representations = [{"__typename": "ProductGroup" if i % 2 == 0 else "Product", "id": id_}
                       for i, id_ in enumerate(ids)]
    before = federated_pair.plans.runs["compiled"]
    federated_pair.assert_same(query, {"r": representations})
    federated_pair.assert_same("{ _service { sdl } }")
    assert federated_pair.plans.runs["compiled"] == before + 2


# -- answers in parts ----------------------------------------------------------------------------

IN_PARTS = [
    """{ groups: productGroups(first: 3) { nodes { id name } }
       ... @defer(label: "products") { products(first: 3) { nodes { id name sku } } } }""",
    """{ productGroups(first: 4, filter: {sources: ["axim"]}) { nodes { id name
         ... @defer { products(first: 2) { totalCount nodes { name } } } } } }""",
    """{ productGroups(first: 5) { nodes @stream(initialCount: 2, label: "g") { id name
         ...G @defer(label: "inner") } } }
       fragment G on ProductGroup { code status parent { name } }""",
    """query Q($later: Boolean!) { products(first: 3) { nodes { name
         ... @defer(if: $later) { sku price variants { sku } } } } }""",
]


@pytest.mark.parametrize("fault", [None, Fault(status=503), Fault(malformed=True)],
                         ids=["healthy", "unavailable", "malformed"])
@pytest.mark.parametrize("accept", [DEFER_SPEC, INCREMENTAL_SPEC])
def test_answers_in_parts_merge_to_the_standard_executors_answer(
        pair: Pair, faults: Emulators, fault: Fault | None, accept: str) -> None:
    """Compiled execution's parts, merged, are graphql-core's answer (the standard path
    answers whole) and the whole answer of compiled execution itself."""
    for running in faults.values():
        if fault is not None:
            running.faults.set(fault)
    for query in IN_PARTS:
        variables = {"later": True} if "$later" in query else None
        answer = fetch(f"{pair.compiled_url}/graphql", query, variables, accept=accept)
        compiled, standard = pair.answers(query, variables)
        assert compiled == standard, f"differs for:\n{query}"
        # Merged, a later part's fields come after the first part's: the same answer, in
        # another key order (JSON objects are unordered; clients merge by key).
        whole = normalised(merged(answer.parts))
        assert {**whole, "data": json.loads(whole["data"])} == {
            **standard, "data": json.loads(standard["data"])}, f"differs for:\n{query}\n{accept}"
        if fault is None:
            assert len(answer.parts) >= 2 and answer.parts[0]["hasNext"] is True
