"""The one walk (CollectFields): order, fragments once, type conditions, directives, depth."""

from __future__ import annotations

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionNode,
    parse,
)

from gateway.graph.walk import collect_fields, selected


def _parts(query: str) -> tuple[OperationDefinitionNode, dict[str, FragmentDefinitionNode]]:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    return operation, fragments


def _keys(collected: dict[str, list[FieldNode]]) -> list[tuple[str, int]]:
    return [(key, len(nodes)) for key, nodes in collected.items()]


def test_fields_are_grouped_by_response_key_in_document_order_through_fragments() -> None:
    operation, fragments = _parts("""
      { a ...F b: a ... on Query { c a } d ...F }
      fragment F on Query { e a }""")
    collected = collect_fields([operation.selection_set], fragments)
    # F is spread twice and collected once; `a` comes from the query, the inline fragment and F.
    assert _keys(collected) == [("a", 3), ("e", 1), ("b", 1), ("c", 1), ("d", 1)]


def test_a_type_condition_that_does_not_apply_skips_its_fields() -> None:
    operation, fragments = _parts("""
      { node { id ... on Product { sku } ...G } }
      fragment G on ProductGroup { name }""")
    inner = collect_fields([operation.selection_set], fragments)["node"][0].selection_set

    def only(type_name: str) -> dict[str, list[FieldNode]]:
        def applies(condition: NamedTypeNode) -> bool:
            return condition.name.value == type_name

        return collect_fields([inner], fragments, applies=applies)

    assert list(only("Product")) == ["id", "sku"]
    assert list(only("ProductGroup")) == ["id", "name"]
    assert list(collect_fields([inner], fragments)) == ["id", "sku", "name"]  # no type known


def test_directives_are_the_callers_to_read() -> None:
    operation, fragments = _parts("{ a @skip(if: true) b ...F @include(if: false) }"
                                  " fragment F on Query { c }")

    def included(selection: SelectionNode) -> bool:
        return not any(d.name.value in ("skip", "include") for d in selection.directives or ())

    assert list(collect_fields([operation.selection_set], fragments, included=included)) == ["b"]
    assert list(collect_fields([operation.selection_set], fragments)) == ["a", "b", "c"]


def test_fragments_nested_past_pythons_stack_are_walked() -> None:
    depth = 5000
    chain = " ".join(f"fragment F{i} on Query {{ f{i} ...F{i + 1} }}" for i in range(depth))
    operation, fragments = _parts(f"{{ ...F0 }} {chain} fragment F{depth} on Query {{ end }}")
    assert len(selected([operation.selection_set], fragments)) == depth + 1


def test_fragments_spread_in_each_other_cost_linear_time() -> None:
    # Each level spreads the next twice: without "each fragment once" this is 2^40 fields.
    levels = 40
    chain = " ".join(f"fragment F{i} on Query {{ f{i} ...F{i + 1} ...F{i + 1} }}"
                     for i in range(levels))
    operation, fragments = _parts(f"{{ ...F0 ...F0 }} {chain} fragment F{levels} on Query {{ x }}")
    assert len(selected([operation.selection_set], fragments)) == levels + 1
