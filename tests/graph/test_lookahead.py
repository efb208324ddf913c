"""The look-ahead over a real (tiny) strawberry schema: what a field's value selects, through
fragments, aliases and variables, and the per-request memo."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.graph.lookahead import arguments, item_fields, wants
from gateway.scope import RequestScope


@strawberry.type
class Item:
    name: str = "item"

    @strawberry.field
    def products(self, first: int | None = None, search: str | None = None) -> str:
        return "p"


@strawberry.type
class Edge:
    cursor: str = "c"
    node: Item = strawberry.field(default_factory=Item)


@strawberry.type
class Conn:
    nodes: list[Item]
    edges: list[Edge]
    total_count: int = 0


@dataclass
class Seen:
    wants_total: list[bool] = field(default_factory=list)
    items: list[list[str]] = field(default_factory=list)
    products_arguments: list[list[dict[str, Any]]] = field(default_factory=list)


@strawberry.type
class Query:
    @strawberry.field
    def things(self, info: Info[Any, None]) -> Conn:
        seen: Seen = info.context.seen
        seen.wants_total.append(wants(info, "totalCount"))
        found = item_fields(info)
        seen.items.append([f.name.value for f in found])
        seen.products_arguments.append(
            [arguments(info, f) for f in found if f.name.value == "products"])
        return Conn(nodes=[Item()], edges=[Edge()])


SCHEMA = strawberry.Schema(query=Query)


@dataclass
class Context:
    scope: RequestScope = field(default_factory=RequestScope)
    seen: Seen = field(default_factory=Seen)


def look(query: str, variables: dict[str, Any] | None = None) -> Context:
    context = Context()
    result = SCHEMA.execute_sync(query, variable_values=variables, context_value=context)
    assert result.errors is None, result.errors
    return context


def test_fields_through_nodes_and_edges() -> None:
    seen = look("{ things { nodes { name } edges { cursor node { products } } } }").seen
    assert seen.items == [["name", "products"]]
    assert seen.wants_total == [False]


def test_fields_through_fragments_and_inline_fragments() -> None:
    seen = look("""
        query { things { ...Page } }
        fragment Page on Conn { totalCount nodes { ... on Item { name } ...More } }
        fragment More on Item { products(first: 3) }
    """).seen
    assert seen.wants_total == [True]
    assert seen.items == [["name", "products"]]
    assert seen.products_arguments == [[{"first": 3}]]


def test_arguments_literal_and_from_variables() -> None:
    seen = look("""query ($n: Int, $s: String) {
        things { nodes { a: products(first: $n, search: $s) b: products(first: 2, search: "x") } }
    }""", {"n": 5, "s": "cook"}).seen
    assert seen.products_arguments == [[{"first": 5, "search": "cook"},
                                        {"first": 2, "search": "x"}]]


def test_a_variable_not_sent_leaves_its_argument_unset() -> None:
    seen = look("""query ($n: Int, $s: String) {
        things { nodes { products(first: $n, search: $s) } }
    }""", {"n": 5}).seen
    assert seen.products_arguments == [[{"first": 5}]]


def test_aliases_are_looked_through_by_field_name() -> None:
    seen = look("{ things { count: totalCount list: nodes { label: name } } }").seen
    assert seen.wants_total == [True]
    assert seen.items == [["name"]]


def test_wants_is_remembered_per_field_of_the_request() -> None:
    context = look("{ a: things { totalCount } b: things { nodes { name } } }")
    assert context.seen.wants_total == [True, False]
    # One memo entry per field of the query, whatever the number of questions.
    assert len(context.scope.selections) == 2
    assert sorted(map(sorted, context.scope.selections.values())) == [["nodes"], ["totalCount"]]
