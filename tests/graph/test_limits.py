"""Document limits: what each limit counts, the refusal it makes, and that every legitimate
document passes the defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLError, GraphQLSyntaxError, parse

from gateway.config import LimitSettings
from gateway.errors import ErrorCode
from gateway.graph.limits import (
    SATURATED,
    DocumentLimitExceeded,
    check_variables,
    measure,
    parse_within_limits,
)
from tests.corpus import CORPUS

DEFAULTS = LimitSettings()
ROOT = Path(__file__).resolve().parents[2]


def refusal(query: str, limits: LimitSettings = DEFAULTS) -> DocumentLimitExceeded:
    with pytest.raises(DocumentLimitExceeded) as caught:
        parse_within_limits(query, limits)
    return caught.value


def graphiql_introspection() -> str:
    """The introspection query GraphiQL 3 sends (graphql-js 16, every option on): type
    references nine levels deep, the deepest document a client of ours sends."""
    type_ref = "kind name"
    for _ in range(9):
        type_ref = f"kind name ofType {{ {type_ref} }}"
    return f"""query IntrospectionQuery {{ __schema {{ description queryType {{ name kind }}
      mutationType {{ name kind }} subscriptionType {{ name kind }} types {{ ...FullType }}
      directives {{ name description isRepeatable locations args(includeDeprecated: true) {{
        ...InputValue }} }} }} }}
    fragment FullType on __Type {{ kind name description specifiedByURL isOneOf
      fields(includeDeprecated: true) {{ name description args(includeDeprecated: true) {{
        ...InputValue }} type {{ ...TypeRef }} isDeprecated deprecationReason }}
      inputFields(includeDeprecated: true) {{ ...InputValue }} interfaces {{ ...TypeRef }}
      enumValues(includeDeprecated: true) {{ name description isDeprecated deprecationReason }}
      possibleTypes {{ ...TypeRef }} }}
    fragment InputValue on __InputValue {{ name description type {{ ...TypeRef }} defaultValue
      isDeprecated deprecationReason }}
    fragment TypeRef on __Type {{ {type_ref} }}"""


def test_every_published_readme_and_suite_document_passes_the_defaults() -> None:
    for query in [*CORPUS, graphiql_introspection()]:
        parse_within_limits(query, DEFAULTS)


def test_the_measures_of_a_document() -> None:
    shape = measure(parse("""
      query Q($a: Int, $b: Boolean!) {
        productGroups(first: $a) { nodes { x: name ...F } }
        y: sources @include(if: $b) { id }
      }
      fragment F on ProductGroup { parent { z: name parent { name } } }
    """))
    assert shape.depth == 5  # productGroups > nodes > parent > parent > name
    assert shape.aliases == 3
    assert shape.root_fields == 2
    assert shape.directives == 1
    assert shape.variables == 2


def test_directives_are_counted_where_written_once_each() -> None:
    shape = measure(parse("""
      query Q($a: Int @d) @d { ...F ...F x: sources @d { id } }
      fragment F on Query @d { sources @d { id } }
      fragment Unused on Query { sources @d { id } }"""))
    assert shape.directives == 6


def test_the_introspection_graphiql_sends_is_fifteen_deep() -> None:
    assert measure(parse(graphiql_introspection())).depth == 15 == DEFAULTS.max_depth


@pytest.mark.parametrize(("query", "limit", "value"), [
    ("{ " + "productGroups { nodes { parent { " * 5 + "name" + " } } }" * 5 + " }",
     "max_depth", 16),
    ("{ " + " ".join(f"a{i}: sources {{ id }}" for i in range(31)) + " }", "max_aliases", 31),
    ("{ " + " ".join(["sources { id }", "node(id: 1) { id }"] * 16) + " }",
     "max_root_fields", 32),
    ("{ sources { id " + " ".join(["id @skip(if: false)"] * 31) + " } }", "max_directives",
     31),
    ("query(" + " ".join(f"$v{i}: Int" for i in range(31)) + ") { sources { id } }",
     "max_variables", 31),
])
def test_each_limit_refuses_with_its_name_and_value(query: str, limit: str, value: int) -> None:
    error = refusal(query)
    assert error.extensions == {"code": ErrorCode.DOCUMENT_LIMIT_EXCEEDED.value,
                                "limit": limit, "max": getattr(DEFAULTS, limit),
                                "value": value}
    assert f"[limits] {limit}" in error.message


def test_fragments_multiply_aliases_as_they_multiply_an_answer() -> None:
    # Each spread of F counts F's aliases again: 4 spreads of 8 aliases is 32 in the answer.
    query = ("{ productGroups { nodes { ...F ...G } } } fragment G on ProductGroup { ...F ...F "
             "...F } fragment F on ProductGroup { "
             + " ".join(f"n{i}: name" for i in range(8)) + " }")
    assert refusal(query).extensions["value"] == 32  # type: ignore[index]


def test_a_fragment_bomb_saturates_instead_of_counting_forever() -> None:
    # Each fragment spreads the next one twice: 2**60 aliases, counted in linear time.
    chain = " ".join(f"fragment F{i} on ProductGroup {{ ...F{i + 1} parent {{ ...F{i + 1} }} }}"
                     for i in range(60))
    query = (f"{{ productGroups {{ nodes {{ ...F0 }} }} }} {chain} "
             "fragment F60 on ProductGroup { a: name }")
    shape = measure(parse(query))
    assert shape.aliases == min(2**60, SATURATED)
    assert refusal(query).limit in ("max_depth", "max_aliases")


def test_cyclic_and_unknown_fragments_are_left_to_validation() -> None:
    shape = measure(parse("{ sources { ...A ...Missing } } fragment A on Source { ...B } "
                          "fragment B on Source { x: id ...A }"))
    assert shape.aliases == 1


def test_tokens_and_comments_are_bounded_before_the_whole_text_is_read() -> None:
    limits = LimitSettings(max_tokens=100)
    many = "{ sources { " + "id " * 200 + "} }"
    error = refusal(many, limits)
    assert error.extensions == {"code": "DOCUMENT_LIMIT_EXCEEDED", "limit": "max_tokens",
                                "max": 100}
    comments = "\n".join(["# padding"] * 200) + "\n{ sources { id } }"
    assert refusal(comments, limits).limit == "max_tokens"


def test_tens_of_thousands_of_unused_variables_are_refused_at_the_token_limit() -> None:
    query = "query Q(" + " ".join(f"$v{i}: Int" for i in range(40_000)) + ") { sources { id } }"
    assert len(query) > 500_000
    assert refusal(query).limit == "max_tokens"


def test_a_syntax_error_stays_a_syntax_error() -> None:
    with pytest.raises(GraphQLSyntaxError) as caught:
        parse_within_limits("{ sources { id }", DEFAULTS)
    assert not isinstance(caught.value, DocumentLimitExceeded)


@pytest.mark.parametrize(("variables", "limit"), [
    ({f"v{i}": i for i in range(31)}, "max_variables"),
    ({"ids": [str(i) for i in range(1000)]}, "max_variable_values"),
    ({"deep": {"a": [{"b": list(range(600))}, {"c": list(range(600))}]}}, "max_variable_values"),
])
def test_the_variables_map_is_bounded(variables: dict[str, Any], limit: str) -> None:
    with pytest.raises(DocumentLimitExceeded) as caught:
        check_variables(variables, DEFAULTS)
    assert caught.value.limit == limit


def test_variables_within_bounds_pass() -> None:
    check_variables({"ids": [str(i) for i in range(100)], "n": 5}, DEFAULTS)
    check_variables(None, DEFAULTS)


def test_a_refusal_is_a_graphql_error_without_a_location() -> None:
    error = refusal("{ " + " ".join(f"a{i}: sources {{ id }}" for i in range(40)) + " }")
    assert isinstance(error, GraphQLError)
    assert error.formatted["extensions"]["code"] == "DOCUMENT_LIMIT_EXCEEDED"
    assert "locations" not in error.formatted
