"""MkDocs hooks (``mkdocs.yml``: ``hooks``): a page's ``<!-- generated: NAME -->`` line becomes
what the code says at build time, so no page can go stale:

* ``configuration``: every key of the configuration model (:mod:`gateway.config.reference`);
* ``error-codes``: every ``ErrorCode`` with its meaning (``gateway.errors.MEANINGS``);
* ``schema``: every type and field of the published schema with its description (the SDL that
  ``python -m gateway schema`` prints).

The built site also carries the configuration's JSON Schema at ``gateway.schema.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    build_schema,
)

from gateway.config.reference import json_schema, reference_markdown
from gateway.errors import MEANINGS
from gateway.graph import print_sdl

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda match: generated(match.group(1)), markdown)


def on_post_build(config: Any, **_: Any) -> None:
    site = Path(config["site_dir"])
    (site / "gateway.schema.json").write_text(json.dumps(json_schema(), indent=2) + "\n")


def generated(name: str) -> str:
    makers = {"configuration": reference_markdown, "error-codes": error_codes,
              "schema": schema_reference}
    if name not in makers:
        raise ValueError(f"no generated page part named {name!r}")
    return makers[name]()


def error_codes() -> str:
    rows = [f"| `{code.value}` | {_cell(meaning)} |" for code, meaning in MEANINGS.items()]
    return "\n".join(["| code | meaning |", "|---|---|", *rows]) + "\n"


def schema_reference() -> str:
    """Each type of the schema, in the SDL's order of kinds: its description and members."""
    schema = build_schema(print_sdl())
    named = [t for name, t in schema.type_map.items() if not name.startswith("__")]
    parts: list[str] = []
    for title, kind in (("Queries", None), ("Objects", GraphQLObjectType),
                        ("Interfaces", GraphQLInterfaceType), ("Unions", GraphQLUnionType),
                        ("Inputs", GraphQLInputObjectType), ("Enums", GraphQLEnumType),
                        ("Scalars", GraphQLScalarType)):
        members: list[GraphQLNamedType]
        if kind is None:
            members = [t for t in (schema.query_type, schema.subscription_type) if t]
        else:
            members = sorted((t for t in named if isinstance(t, kind)
                              and t not in (schema.query_type, schema.subscription_type)),
                             key=lambda t: t.name)
        if not members:
            continue
        parts.append(f"## {title}\n")
        parts += [_type_section(t) for t in members]
    return "\n".join(parts)


def _type_section(graphql_type: GraphQLNamedType) -> str:
    lines = [f"### `{graphql_type.name}`", ""]
    if graphql_type.description:
        lines += [graphql_type.description.strip(), ""]
    if isinstance(graphql_type, (GraphQLObjectType, GraphQLInterfaceType,
                                 GraphQLInputObjectType)):
        lines += ["| field | type | description |", "|---|---|---|"]
        for name, field in graphql_type.fields.items():
            arguments = getattr(field, "args", {}) or {}
            signature = name + (f"({', '.join(arguments)})" if arguments else "")
            text = (field.description or "").strip()
            for argument_name, argument in arguments.items():
                if argument.description:
                    text += f" `{argument_name}`: {argument.description.strip()}"
            reason = getattr(field, "deprecation_reason", None)
            if reason:
                text += f" **Deprecated:** {reason}"
            lines.append(f"| `{signature}` | `{field.type}` | {_cell(text)} |")
    elif isinstance(graphql_type, GraphQLEnumType):
        lines += ["| value | description |", "|---|---|"]
        lines += [f"| `{name}` | {_cell((value.description or '').strip())} |"
                  for name, value in graphql_type.values.items()]
    elif isinstance(graphql_type, GraphQLUnionType):
        lines.append("One of " + ", ".join(f"`{t.name}`" for t in graphql_type.types) + ".")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())
