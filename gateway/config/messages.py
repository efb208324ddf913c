"""pydantic's errors in the project's words, each at its place in the file in the one location
style: ``[server] port``, ``[auth.jwt] secret``, ``[[sources]] #2 (joptic) base_url``,
``[auth] api_keys #1 sha256``."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from gateway.config.model import Config
from gateway.config.sources import SourceConfig
from gateway.config.toml_errors import entry_label

__all__ = ["Problem", "describe_errors", "source_label"]

# A problem found in a file: where it sorts (sections first, then entries in file order) and text.
Problem = tuple[int, str]


# What a string key's pattern asks, in words.
_PATTERNS = {
    "name": "must be a lowercase letter, then up to 62 lowercase letters, digits, '-' or '_'",
    "namespace": "must be 1 to 40 letters, digits, '.', '-' or '_'",
    "client": "must be 1 to 100 letters, digits, '.', ':', '@', '-' or '_'",
    "sha256": "must be the key's SHA-256, 64 lowercase hex digits (`printf %s KEY | "
              "sha256sum`), not the key",
    "pass_through_header": "must be a header name: 1 to 64 letters, digits or '-'",
}
# pydantic's error type -> the project's words, for errors whose words need no context.
_WORDS = {
    "missing": "missing: this key is required",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string (in quotes)",
    "tuple_type": "must be a list: [ … ]",
    "list_type": "must be a list: [ … ]",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "url_type": "must be an absolute http(s) URL",
    "url_parsing": "must be an absolute http(s) URL",
    "url_scheme": "must be an absolute http(s) URL",
    "url_syntax_violation": "must be an absolute http(s) URL",
}
# Bounds: pydantic's error type, its context key, the words.
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be more than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
    "too_short": ("min_length", "must have at least {} item{}"),
    "too_long": ("max_length", "must have at most {} item{}"),
    "string_too_short": ("min_length", "must have at least {} character{}"),
    "string_too_long": ("max_length", "must have at most {} character{}"),
}
_AT_LEAST_ONE_SOURCE = ("missing: give at least one [[sources]] entry (name, kind, base_url "
                        "and token_env)")


def describe_errors(exc: ValidationError, data: Mapping[str, Any]) -> list[Problem]:
    # Only location and message: pydantic's input_value could be a token.
    problems: list[Problem] = []
    errors = exc.errors(include_input=False, include_url=False)
    entries_failed = any(len(e["loc"]) > 1 and e["loc"][0] == "sources" for e in errors)
    for error in errors:
        loc = tuple(error["loc"])
        if loc == ("sources",) and error["type"] == "too_short" and entries_failed:
            continue  # a consequence of the entries' own errors, already listed
        index = loc[1] if len(loc) > 1 and loc[0] == "sources" else None
        problems.append((index + 1 if isinstance(index, int) else 0,
                         _message(loc, error["type"], error["msg"], error.get("ctx") or {},
                                  data)))
    return problems


def _message(loc: tuple[Any, ...], kind: str, text: str, ctx: Mapping[str, Any],
             data: Mapping[str, Any]) -> str:
    """One field error in the project's words, with its location."""
    if kind == "extra_forbidden":
        return _unknown(loc, data)
    if loc == ("sources",) and kind in ("missing", "too_short"):
        return f"[[sources]]: {_AT_LEAST_ONE_SOURCE}"
    return f"{_where(loc, data)}: {_words(loc, kind, text, ctx)}"


def _words(loc: tuple[Any, ...], kind: str, text: str, ctx: Mapping[str, Any]) -> str:
    if kind in _WORDS:
        return _WORDS[kind]
    if kind in ("literal_error", "enum"):
        return "must be one of " + ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected"))))
    if kind in _BOUNDS and ctx.get(_BOUNDS[kind][0]) is not None:
        key, words = _BOUNDS[kind]
        bound = ctx[key]
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return words.format(bound, "" if bound == 1 else "s")
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(loc[-1]), f"must match the pattern {ctx.get('pattern')}")
    if kind in ("value_error", "assertion_error"):
        return text.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return text[:1].lower() + text[1:]  # a rare error: pydantic's own words


def _unknown(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    """An unknown key or table, with the known one it is closest to."""
    *container, key = loc
    close = difflib.get_close_matches(str(key), _known_keys(tuple(container)), n=1)
    value = data.get(key) if not container else None
    if isinstance(value, dict) or (isinstance(value, list) and value
                                   and all(isinstance(item, dict) for item in value)):
        def table(name: str) -> str:
            return f"[[{name}]]" if name == "sources" or isinstance(value, list) else f"[{name}]"

        return f"{table(key)}: unknown table" + (f" (did you mean {table(close[0])}?)"
                                                 if close else "")
    where = _where(loc, data)
    return f"{where}: unknown key" + (f" (did you mean {close[0]}?)" if close else "")


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (``JwtSettings | None`` holds ``JwtSettings``), if any."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    for candidate in (annotation, *(typing.get_args(annotation) if union else ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _model_at(container: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the table at ``container`` (``()``: the file; ``("sources", 2)``: an
    entry), or None when it is not a table of the configuration."""
    if len(container) == 2 and container[0] == "sources" and isinstance(container[1], int):
        return SourceConfig
    model: type[BaseModel] | None = Config
    for part in container:
        field = model.model_fields.get(part) if model and isinstance(part, str) else None
        model = _model_of(field.annotation) if field is not None else None
    return model


def _known_keys(container: tuple[Any, ...]) -> list[str]:
    """The keys the table at ``container`` accepts."""
    model = _model_at(container)
    return list(model.model_fields) if model is not None else []


def _where(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    """A place in the file in the project's one style: ``[server] port``, ``[auth.jwt]
    secret``, ``[[sources]] #2 (joptic) base_url``, ``[auth] api_keys #1 sha256``,
    ``[rate_limits] clients.shop.requests_per_minute``; a key of no table bare."""
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        head, rest = source_label(loc[1], data), loc[2:]
    else:
        tables = 0
        while tables < len(loc) and _model_at(loc[:tables + 1]) is not None:
            tables += 1
        head = f"[{'.'.join(map(str, loc[:tables]))}]" if tables else ""
        rest = loc[tables:]
    words: list[str] = [head] if head else []
    for part in rest:
        if isinstance(part, int):
            words.append(f"#{part + 1}")
        elif words and words[-1] != head and not words[-1].startswith("#"):
            words[-1] += f".{part}"
        else:
            words.append(str(part))
    return " ".join(words)


def source_label(index: int, data: Mapping[str, Any]) -> str:
    """``[[sources]] #3 (axim)``: the entry's number from 1, and its name when it has one."""
    sources = data.get("sources")
    name = None
    if isinstance(sources, list) and index < len(sources) and isinstance(sources[index], dict):
        name = sources[index].get("name")
    return entry_label("sources", index + 1, name)
