"""Compiled execution's plain reads (records' attributes read with no resolver, serialiser or
position) answer what graphql-core answers: for the common case, and for every value that makes
them step back to the general path (a null where the schema forbids one, a value of another
type, an attribute that raises), whose errors must be located as graphql-core locates them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import strawberry
from graphql import ExecutionResult, execute, parse

from gateway.graph import planner
from gateway.graph.executor import execute_plan
from gateway.graph.plain import Reader, object_reader
from gateway.graph.plan import ListShape, NonNullShape, ObjectShape
from gateway.graph.planner import build_plan
from gateway.graph.strawberry_internals import graphql_schema
from gateway.graph.variables import coerce_variables


@strawberry.type
class Tag:
    label: str
    code: strawberry.ID | None

    @classmethod
    def is_type_of(cls, value: object, info: object) -> bool:  # as the gateway's types do
        return isinstance(value, Tag)


@strawberry.type
class Item:
    name: str
    note: str | None
    active: bool | None
    tags: list[Tag]
    words: list[str | None] | None
    main: Tag | None
    count: int | None
    price: float


@strawberry.type
class Query:
    items: list[Item | None]


SCHEMA = graphql_schema(strawberry.Schema(query=Query))
QUERY = ("{ items { __typename name note active words tags { label code } main { label } "
         "count price } }")


class Broken:
    """A record whose attribute raises when read."""

    @property
    def label(self) -> str:
        raise ValueError("label unreadable")


def item(**changes: Any) -> Item:
    values: dict[str, Any] = {
        "name": "Lamp", "note": None, "active": True, "words": ["a", None],
        "tags": [Tag(label="x", code=strawberry.ID("1")), Tag(label="y", code=None)],
        "main": Tag(label="m", code=None), "count": 3, "price": 9.5}
    values.update(changes)
    made = Item.__new__(Item)
    for name, value in values.items():
        object.__setattr__(made, name, value)
    return made


async def both(items: list[Any]) -> tuple[ExecutionResult, ExecutionResult]:
    root = Query(items=items)
    document = parse(QUERY)
    operation = document.definitions[0]
    plan = build_plan(SCHEMA, operation, {}, {})  # type: ignore[arg-type]
    coerced = coerce_variables(SCHEMA, operation, None)  # type: ignore[arg-type]
    assert not isinstance(coerced, list)
    compiled = await execute_plan(SCHEMA, plan, coerced, root_value=root, context=None)
    standard = execute(SCHEMA, document, root_value=root)
    assert isinstance(standard, ExecutionResult)
    return compiled, standard


def same_json(one: Any, other: Any) -> bool:
    """Equal as answers: 3 and 3.0 are equal in Python, not on the wire."""
    return json.dumps(one) == json.dumps(other)


def located(result: ExecutionResult) -> list[tuple[str, Any]]:
    return sorted((e.message, e.path) for e in result.errors or ())


async def test_a_plain_tree_is_read_plainly_and_answers_as_graphql_core(
        monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Any] = []

    def counted(*args: Any, **kwargs: Any) -> Reader:
        read = object_reader(*args, **kwargs)

        def counting(source: Any) -> Any:
            reads.append(source)
            return read(source)

        return counting

    monkeypatch.setattr(planner, "object_reader", counted)  # the readers planned count
    compiled, standard = await both([item(), None, item(name="Desk", tags=[])])
    assert same_json(compiled.data, standard.data) and not compiled.errors and not standard.errors
    assert any(getattr(r, "name", None) == "Desk" for r in reads)  # the second item, plainly
    items = build_plan(SCHEMA, parse(QUERY).definitions[0], {},  # type: ignore[arg-type]
                       {}).root.fields[0].shape
    assert isinstance(items, NonNullShape) and isinstance(items.inner, ListShape)
    assert isinstance(items.inner.item, ObjectShape) and items.inner.item.reads


@pytest.mark.parametrize("bad", [
    {"name": None},  # null in a non-null field: the item is nulled
    {"tags": [Tag(label=None, code=None)]},  # type: ignore[arg-type]  # null deeper down
    {"name": 7},  # not a str: String serialises it
    {"active": "yes"},  # not a bool: Boolean refuses it
    {"words": ("a", 3)},  # a tuple, with an int in it
    {"main": Broken()},  # an object of a class the type does not know
    {"tags": [Tag(label="x", code=None), Broken()]},
    {"words": "abc"},  # a string where a list is expected
    {"count": 2**40},  # beyond Int's 32 bits
    {"count": True},  # a bool: Int sends 1
    {"price": 3},  # an int: Float sends 3.0
    {"price": float("nan")},  # not finite: Float refuses it
], ids=["null-name", "null-deep", "int-string", "str-bool", "tuple-int", "foreign-object",
        "foreign-item", "string-for-list", "int-too-big", "bool-int", "int-float", "nan"])
async def test_a_value_plain_reads_do_not_take_is_answered_as_graphql_core(
        bad: dict[str, Any]) -> None:
    compiled, standard = await both([item(), item(**bad), item(name="Desk")])
    assert same_json(compiled.data, standard.data)
    assert located(compiled) == located(standard)


async def test_an_attribute_that_raises_is_located_as_graphql_core_locates_it() -> None:
    broken_tag = Tag.__new__(Tag)
    object.__setattr__(broken_tag, "code", None)

    class Raising(Tag):
        @property
        def label(self) -> str:  # type: ignore[override]
            raise ValueError("label unreadable")

    raising = Raising.__new__(Raising)
    object.__setattr__(raising, "code", None)
    compiled, standard = await both([item(main=raising), item()])
    assert same_json(compiled.data, standard.data)
    assert located(compiled) == located(standard) != []
