"""The plain reader on its own: what it answers as it is, and every value it leaves to the
general path (NotPlain), field kind by field kind. (That the executor's answers equal
graphql-core's, plain or not: tests/graph/test_plain_reads.py.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from gateway.graph.plain import (
    MAX_INT,
    MIN_INT,
    NotPlain,
    PlainRead,
    Reader,
    float_read,
    int_read,
    leaf_read,
    list_read,
    object_read,
    object_reader,
    typename_read,
)


@dataclass
class Tag:
    label: Any


@dataclass
class Record:
    name: Any = "Lamp"
    note: Any = None
    count: Any = 3
    price: Any = 9.5
    tags: Any = ()
    main: Any = None
    words: Any = ()


TAG_READS = (leaf_read("label", "label", str, nullable=False),)
TAGS: set[type] = {Tag}


def reader(*reads: PlainRead) -> Reader:
    return object_reader(reads, {Record}, nullable=False)


def test_a_record_is_read_in_the_selections_order_with_its_keys() -> None:
    read = reader(
        typename_read("__typename", "Item"),
        leaf_read("title", "name", str, nullable=False),  # an alias: the key, not the attribute
        leaf_read("note", "note", str, nullable=True),
        int_read("count", "count", nullable=False),
        float_read("price", "price", nullable=False),
        list_read("tags", "tags", object_read("", "", TAG_READS, TAGS, nullable=False),
                  nullable=False),
        object_read("main", "main", TAG_READS, TAGS, nullable=True),
        list_read("words", "words", leaf_read("", "", str, nullable=True), nullable=False),
    )

    out = read(Record(tags=[Tag("x"), Tag("y")], main=Tag("m"), words=("a", None)))

    assert out == {"__typename": "Item", "title": "Lamp", "note": None, "count": 3,
                   "price": 9.5, "tags": [{"label": "x"}, {"label": "y"}],
                   "main": {"label": "m"}, "words": ["a", None]}
    assert list(out) == ["__typename", "title", "note", "count", "price", "tags", "main",
                         "words"]
    assert isinstance(out["words"], list)  # a tuple is sent as a list


@pytest.mark.parametrize(("read", "value", "expected"), [
    pytest.param(leaf_read("k", "v", str, nullable=True), None, None, id="nullable-leaf-null"),
    pytest.param(leaf_read("k", "v", bool, nullable=False), True, True, id="bool"),
    pytest.param(int_read("k", "v", nullable=False), MAX_INT, MAX_INT, id="int-max"),
    pytest.param(int_read("k", "v", nullable=False), MIN_INT, MIN_INT, id="int-min"),
    pytest.param(int_read("k", "v", nullable=True), None, None, id="nullable-int-null"),
    pytest.param(float_read("k", "v", nullable=True), None, None, id="nullable-float-null"),
    pytest.param(object_read("k", "v", TAG_READS, TAGS, nullable=True), None, None,
                 id="nullable-object-null"),
    pytest.param(list_read("k", "v", leaf_read("", "", str, nullable=False), nullable=True),
                 None, None, id="nullable-list-null"),
    pytest.param(list_read("k", "v", object_read("", "", TAG_READS, TAGS, nullable=True),
                           nullable=False), [None, Tag("t")], [None, {"label": "t"}],
                 id="nullable-object-items"),
])
def test_what_is_sent_as_it_is(read: PlainRead, value: Any, expected: Any) -> None:
    @dataclass
    class Holder:
        v: Any

    assert object_reader([read], {Holder}, nullable=False)(Holder(value)) == {"k": expected}


@pytest.mark.parametrize(("read", "value"), [
    pytest.param(leaf_read("k", "v", str, nullable=False), None, id="null-in-non-null"),
    pytest.param(leaf_read("k", "v", str, nullable=True), 7, id="int-for-string"),
    pytest.param(leaf_read("k", "v", bool, nullable=True), "yes", id="string-for-bool"),
    pytest.param(leaf_read("k", "v", str, nullable=True), type("S", (str,), {})("x"),
                 id="a-str-subclass"),
    pytest.param(int_read("k", "v", nullable=True), MAX_INT + 1, id="int-too-big"),
    pytest.param(int_read("k", "v", nullable=True), MIN_INT - 1, id="int-too-small"),
    pytest.param(int_read("k", "v", nullable=True), True, id="bool-for-int"),
    pytest.param(int_read("k", "v", nullable=False), None, id="null-int"),
    pytest.param(float_read("k", "v", nullable=True), 3, id="int-for-float"),
    pytest.param(float_read("k", "v", nullable=True), float("nan"), id="nan"),
    pytest.param(float_read("k", "v", nullable=True), float("inf"), id="infinite"),
    pytest.param(object_read("k", "v", TAG_READS, TAGS, nullable=False), None,
                 id="null-object"),
    pytest.param(object_read("k", "v", TAG_READS, TAGS, nullable=True), Record(),
                 id="object-of-a-class-not-accepted"),
    pytest.param(object_read("k", "v", TAG_READS, TAGS, nullable=True), Tag(None),
                 id="null-deeper-down"),
    pytest.param(list_read("k", "v", leaf_read("", "", str, nullable=True), nullable=False),
                 None, id="null-list"),
    pytest.param(list_read("k", "v", leaf_read("", "", str, nullable=True), nullable=True),
                 "abc", id="string-for-list"),
    pytest.param(list_read("k", "v", leaf_read("", "", str, nullable=True), nullable=True),
                 iter(["a"]), id="an-iterator-for-list"),
    pytest.param(list_read("k", "v", leaf_read("", "", str, nullable=False), nullable=True),
                 ["a", None], id="null-item-in-non-null-items"),
    pytest.param(list_read("k", "v", leaf_read("", "", str, nullable=True), nullable=True),
                 ("a", 3), id="int-item"),
    pytest.param(list_read("k", "v", object_read("", "", TAG_READS, TAGS, nullable=False),
                           nullable=True), [Tag("a"), None], id="null-object-item"),
    pytest.param(list_read("k", "v", object_read("", "", TAG_READS, TAGS, nullable=True),
                           nullable=True), [Record()], id="item-of-a-class-not-accepted"),
])
def test_what_is_left_to_the_general_path(read: PlainRead, value: Any) -> None:
    @dataclass
    class Holder:
        v: Any

    with pytest.raises(NotPlain):
        object_reader([read], {Holder}, nullable=False)(Holder(value))


def test_a_class_is_read_once_it_is_accepted_and_an_attribute_that_raises_passes_through(
        ) -> None:
    accepted: set[type] = set()
    read = object_reader(TAG_READS, accepted, nullable=False)
    with pytest.raises(NotPlain):
        read(Tag("x"))
    accepted.add(Tag)  # as the executor adds a class is_type_of took
    assert read(Tag("x")) == {"label": "x"}

    class Raising:
        @property
        def label(self) -> str:
            raise ValueError("unreadable")

    accepted.add(Raising)
    with pytest.raises(ValueError, match="unreadable"):
        read(Raising())
