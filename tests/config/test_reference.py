"""The configuration's reference and JSON Schema are made from the model: the reference lists
every key the model has (walked here on its own, through pydantic's fields), each with its
comment; the committed JSON Schema is the one the code makes; it validates the example file and
rejects a misspelt key, as an editor using it would."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any, get_args

import jsonschema
import pytest
from pydantic import BaseModel

from gateway.config import Config
from gateway.config.reference import json_schema, keys, reference_markdown
from tests.processes import ROOT

EXAMPLE = ROOT / "examples" / "gateway.toml"


def model_keys(model: type[BaseModel], table: str = "") -> Iterator[str]:
    """``table.key`` for every key of ``model``, its inner tables under their dotted names."""
    for name, field in model.model_fields.items():
        inner = [arg for arg in (field.annotation, *_all_args(field.annotation))
                 if isinstance(arg, type) and issubclass(arg, BaseModel)]
        path = f"{table}.{name}" if table else name
        if inner:
            yield from model_keys(inner[0], f"{path}.<name>" if _is_mapping(field.annotation)
                                  else path)
        else:
            yield path


def _all_args(annotation: Any) -> Iterator[Any]:
    for arg in get_args(annotation):
        yield arg
        yield from _all_args(arg)


def _is_mapping(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is dict


def reference_keys() -> set[str]:
    """The keys the reference page shows: ``table.key`` from its headings and rows."""
    shown: set[str] = set()
    table = ""
    for line in reference_markdown().splitlines():
        heading = re.match(r"^## `\[\[?([^\]]+)\]\]?`$", line)
        if heading:
            table = heading.group(1)
        row = re.match(r"^\| `([a-z_0-9]+)` \|", line)
        if row:
            shown.add(f"{table}.{row.group(1)}")
    return shown


def test_the_reference_lists_every_key_the_model_has_and_no_other() -> None:
    expected = set(model_keys(Config))
    assert len(expected) > 100
    assert reference_keys() == expected


def test_every_key_has_its_comment_and_profiles_show_their_defaults() -> None:
    assert [f"{k.table}.{k.name}" for k in keys() if not k.comment] == []
    graphiql = next(k for k in keys() if (k.table, k.name) == ("server", "graphiql"))
    assert graphiql.profiles == "production: false, development: true"


def test_the_committed_json_schema_is_the_models() -> None:
    committed = json.loads((ROOT / "schema" / "gateway.schema.json").read_text())
    assert committed == json_schema(), "run `make schema`"


def test_the_example_names_the_schema_for_editors() -> None:
    first = EXAMPLE.read_text().splitlines()[0]
    assert first == "#:schema ../schema/gateway.schema.json"
    assert (EXAMPLE.parent / first.split(" ", 1)[1]).resolve().is_file()


def test_the_json_schema_validates_the_example_and_rejects_a_misspelt_key() -> None:
    schema = json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    example = tomllib.loads(EXAMPLE.read_text())
    assert list(validator.iter_errors(example)) == []
    misspelt = {**example, "server": {**example["server"], "prot": 8001}}
    errors = list(validator.iter_errors(misspelt))
    assert errors and "'prot' was unexpected" in errors[0].message
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**example, "sources": [{**example["sources"][0],
                                                       "timeout_secs": 5}]}, schema)
