"""The corpus of GraphQL documents several tests run: every published operation, the README's
examples and every executable document written in the test suite (all valid for our schema);
and the DateTime values generated operations take."""

from __future__ import annotations

import ast
import datetime
from pathlib import Path

import graphql
from graphql import GraphQLError, parse, validate
from hypothesis import strategies as st

from gateway.graph import build_schema
from gateway.graph.strawberry_internals import graphql_schema

__all__ = ["CORPUS", "DATES", "SCHEMA", "published_operations"]

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = graphql_schema(build_schema())


def published_operations() -> list[str]:
    return [p.read_text() for p in sorted((ROOT / "schema" / "operations").glob("*.graphql"))]


def documented_queries() -> list[str]:
    text = (ROOT / "docs" / "queries.md").read_text()
    return [block.split("```", 1)[0] for block in text.split("```graphql\n")[1:]]


def suite_documents() -> list[str]:
    """Every string constant in tests/ that is an executable document valid for our schema."""
    found: dict[str, None] = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            text = node.value.strip()
            if not text.startswith(("{", "query", "fragment")):
                continue
            try:
                document = parse(text)
            except GraphQLError:
                continue
            if not validate(SCHEMA, document):
                found[text] = None
    return list(found)


CORPUS = published_operations() + documented_queries() + suite_documents()


# DateTime literals for hypothesis-graphql's generated operations.
DATES = st.datetimes(timezones=st.just(datetime.UTC)).map(
    lambda d: graphql.StringValueNode(value=d.isoformat()))
