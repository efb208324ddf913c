"""Every read or write of strawberry's private names, in one place.

The gateway runs strawberry's schema through parts strawberry does not offer in public: its own
parse cache and validation (:mod:`gateway.graph.documents`), compiled execution
(:mod:`gateway.graph.compiled`), a look-ahead at the query (:mod:`gateway.graph.lookahead`) and
the edge's admission (:mod:`gateway.edge.admission`). Each needs something strawberry keeps
private; each function here names what it touches, why, and the public API that would replace
it, so that an upgrade of strawberry (``strawberry-graphql`` 0.341 when this was written) is
checked here and nowhere else.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLResolveInfo, GraphQLSchema
from strawberry import Schema
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import Info
from strawberry.types.field import StrawberryField

__all__ = [
    "graphql_schema",
    "has_exception_handlers",
    "make_info",
    "raw_info",
    "replace_graphql_schema",
    "strawberry_schema",
]


def graphql_schema(schema: Schema) -> GraphQLSchema:
    """The graphql-core schema strawberry built (``schema._schema``).

    Needed to run graphql-core's own functions on it: validation, the cost rule, compiled
    execution, printing the SDL. Strawberry has no public accessor; its own execution reads the
    same attribute. A public ``Schema.graphql_schema`` (or similar) would replace this.
    """
    return schema._schema


def replace_graphql_schema(schema: Schema, graphql: GraphQLSchema) -> None:
    """Make ``graphql`` the schema strawberry runs (``schema._schema``), linked back to
    ``schema`` as strawberry links the one it builds (``graphql._strawberry_schema``).

    Needed to serve the plain (non-federated) schema without the federation directives'
    definitions (:func:`gateway.graph.schema.build_schema`); ``Info.schema`` and compiled
    execution find the strawberry schema through the back link. Strawberry has no public way
    to change the built schema; a hook to filter directive definitions at build time (or a
    ``Schema`` option to leave federation's out) would replace this.
    """
    schema._schema = graphql
    graphql._strawberry_schema = schema  # type: ignore[attr-defined]  # strawberry sets it so


def strawberry_schema(graphql: GraphQLSchema) -> Schema | None:
    """The strawberry schema that built ``graphql`` (``graphql._strawberry_schema``), or None
    for a schema strawberry did not build.

    Needed by compiled execution to call resolvers as strawberry's wrapper calls them (its
    config's ``Info`` class, its converter). Strawberry reads the same attribute for
    ``Info.schema``; ``info.schema`` is the public way, but there is no ``info`` at planning.
    """
    found = getattr(graphql, "_strawberry_schema", None)
    return found if isinstance(found, Schema) else None


def has_exception_handlers(converter: GraphQLCoreConverter, field: StrawberryField) -> bool:
    """Whether strawberry's wrapper of ``field``'s resolver turns some exceptions into union
    results (``converter._get_field_exception_handlers``).

    Needed by compiled execution, which calls a resolver directly only where strawberry's
    wrapper would do nothing but call it. No public API says so; a public
    ``GraphQLCoreConverter.field_exception_handlers(field)`` would replace this.
    """
    return bool(converter._get_field_exception_handlers(field))


def raw_info(info: Info[Any, Any]) -> GraphQLResolveInfo[Any]:
    """graphql-core's resolve info under strawberry's ``Info`` (``info._raw_info``).

    Needed by the look-ahead, which reads the field's nodes, the fragments and the coerced
    variables as written in the query; ``Info.selected_fields`` gives strawberry's conversion
    of them, built anew per call (too slow for every item of a list). A public
    ``Info.field_nodes`` and ``Info.fragments`` would replace this.
    """
    return info._raw_info


def make_info(info_class: type[Info[Any, Any]], raw: GraphQLResolveInfo[Any],
              field: StrawberryField) -> Info[Any, Any]:
    """Strawberry's ``Info`` for a resolver, built as strawberry's wrapper builds it
    (``info_class(_raw_info=…, _field=…)``).

    Needed by compiled execution, which calls resolvers directly (strawberry's wrapper would
    convert the literal arguments again on every call). The constructor's fields are private;
    a public ``Info.from_resolve_info(raw, field)`` would replace this.
    """
    return info_class(_raw_info=raw, _field=field)
