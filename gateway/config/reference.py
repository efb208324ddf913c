"""The configuration's reference, made from the model itself so it cannot drift: a JSON Schema of
the TOML file (for editors: types, defaults, bounds, and each key's comment as its description)
and the reference page of the documentation (every key with its type, default, bounds, profile
default and comment), both from pydantic's schema of :class:`Config`, the comments read from the
models' source.

Example::

    schema = json_schema()          # what schema/gateway.schema.json holds
    page = reference_markdown()     # what docs/configuration.md shows
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from gateway.config.model import Config
from gateway.config.server import PROFILE_DEFAULTS

__all__ = ["SCHEMA_ID", "Key", "json_schema", "keys", "reference_markdown"]

SCHEMA_ID = "https://catalogue-gateway.example/gateway.schema.json"
Json = dict[str, Any]


@dataclass(frozen=True)
class Key:
    """One key of the file: ``header`` its table's as TOML writes it (``[server]``,
    ``[[sources]]``, ``[rate_limits.clients.<name>]``), ``name`` in it."""

    header: str
    name: str
    type: str
    default: str
    bounds: str
    comment: str
    profiles: str = ""  # "production: false, development: true" where the profile decides

    @property
    def table(self) -> str:
        """The table's dotted name (``server``, ``sources``)."""
        return self.header.strip("[]")


def json_schema() -> Json:
    """The JSON Schema of the TOML file, each property described by its comment."""
    schema = Config.model_json_schema()
    for name, model in _models():
        definition = schema["$defs"].get(name) if name != "Config" else schema
        if definition is None:
            continue
        for key, comment in comments(model).items():
            prop = definition.get("properties", {}).get(key)
            if prop is not None and comment:
                prop["description"] = comment
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema, "title": "catalogue-gateway configuration (gateway.toml)"}


def keys() -> list[Key]:
    """Every key of the file, table by table, in the model's order."""
    schema = json_schema()
    return list(_walk(schema, schema, ""))


def reference_markdown() -> str:
    """The configuration reference: a table of keys per TOML table."""
    lines: list[str] = []
    header = None
    for key in keys():
        if key.header != header:
            header = key.header
            lines += ["", f"## `{header}`", "",
                      "| key | type | default | bounds | what |", "|---|---|---|---|---|"]
        default = key.default + (f" ({key.profiles})" if key.profiles else "")
        lines.append(f"| `{key.name}` | {key.type} | {default} | {key.bounds} | "
                     f"{_cell(key.comment)} |")
    return "\n".join(lines).lstrip() + "\n"


def comments(model: type[BaseModel]) -> dict[str, str]:
    """Each field's comment in ``model``'s source (and its bases'): the comment lines right
    above it, and the one after it on its line."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            lines, _ = inspect.getsourcelines(cls)
        except (OSError, TypeError):
            continue
        source = textwrap.dedent("".join(lines))
        text = source.splitlines()
        tree = ast.parse(source).body[0]
        assert isinstance(tree, ast.ClassDef)
        shared = ""  # a comment above a run of fields speaks for each of them
        previous_end = -2
        for node in tree.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
                above = _above(text, first)
                if above or first != previous_end + 1:
                    shared = above
                trailing = text[last].split("  # ", 1)[1].strip() if "  # " in text[last] \
                    else ""
                found[node.target.id] = trailing if trailing and not above else \
                    " ".join(part for part in (shared, trailing) if part)
                previous_end = last
    return found


def _above(text: list[str], first: int) -> str:
    lines: list[str] = []
    row = first - 1
    while row >= 0 and text[row].strip().startswith("#"):
        lines.insert(0, text[row].strip().lstrip("#").strip())
        row -= 1
    return " ".join(lines)


def _models() -> Iterator[tuple[str, type[BaseModel]]]:
    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = [Config]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        yield model.__name__, model
        for field in model.model_fields.values():
            for inner in _inner_models(field.annotation):
                todo.append(inner)


def _inner_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for argument in getattr(annotation, "__args__", ()):
        yield from _inner_models(argument)


def _walk(root: Json, node: Json, header: str) -> Iterator[Key]:
    """The keys of ``node``, the table of ``header`` ("" for the file's top); its inner
    tables after its own keys."""
    inner: list[tuple[Json, str]] = []
    table = header.strip("[]")
    for name, prop in node.get("properties", {}).items():
        path = f"{table}.{name}" if table else name
        target = _resolved(root, prop)
        items = _resolved(root, prop.get("items", {})) if prop.get("type") == "array" else {}
        extra = prop.get("additionalProperties")
        values = _resolved(root, extra) if isinstance(extra, dict) else {}
        if target.get("properties"):
            inner.append((target, f"[{path}]"))
        elif items.get("properties"):
            inner.append((items, f"[[{path}]]"))
        elif values.get("properties"):
            inner.append((values, f"[{path}.<name>]"))
        else:
            yield Key(header, name, _type(root, prop), _default(prop), _bounds(root, prop),
                      prop.get("description", ""), _profiles(table, name))
    for target, inner_header in inner:
        yield from _walk(root, target, inner_header)


def _resolved(root: Json, prop: Json) -> Json:
    """``prop`` itself, or what its ``$ref`` (alone, or the one besides null) names."""
    choices = [c for c in prop.get("anyOf", [prop]) if c.get("type") != "null"]
    chosen = choices[0] if len(choices) == 1 else prop
    ref = chosen.get("$ref")
    if isinstance(ref, str):
        target: Json = root["$defs"][ref.rsplit("/", 1)[1]]
        return target
    return chosen


def _type(root: Json, prop: Json) -> str:
    choices = prop.get("anyOf", [prop])
    names = [_one_type(root, c) for c in choices if c.get("type") != "null"]
    optional = len(names) < len(choices)
    return " or ".join(names) + (" (optional)" if optional else "")


def _one_type(root: Json, prop: Json) -> str:
    prop = _resolved(root, prop)
    if "enum" in prop:
        return "one of " + ", ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`"
                                     for v in prop["enum"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    kind = prop.get("type")
    if kind == "array":
        inner = _one_type(root, prop.get("items", {}))
        return f"list of {inner}"
    if kind == "object":
        return "table"
    if prop.get("format") == "password":
        return "secret string"
    return {"string": "string", "integer": "integer", "number": "number",
            "boolean": "boolean"}.get(str(kind), "any")


def _default(prop: Json) -> str:
    if "default" not in prop:
        return "required"
    value = prop["default"]
    if value is None:
        return "unset"
    return f"`{_toml(value)}`"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _bounds(root: Json, prop: Json) -> str:
    parts: list[str] = []
    for choice in prop.get("anyOf", [prop]):
        choice = _resolved(root, choice)
        for word, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                           ("exclusiveMaximum", "<"), ("minItems", "items ≥"),
                           ("maxItems", "items ≤"), ("minLength", "length ≥"),
                           ("maxLength", "length ≤")):
            if word in choice:
                parts.append(f"{sign} {choice[word]}")
        if "pattern" in choice:
            parts.append(f"`{choice['pattern']}`")
        items = choice.get("items", {})
        if isinstance(items, dict) and "pattern" in items:
            parts.append(f"each `{items['pattern']}`")
    return ", ".join(parts)


def _profiles(table: str, name: str) -> str:
    if table != "server" or name not in PROFILE_DEFAULTS["production"]:
        return ""
    return ", ".join(f"{profile}: {_toml(values[name])}"
                     for profile, values in PROFILE_DEFAULTS.items())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
