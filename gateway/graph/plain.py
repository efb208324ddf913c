"""Plain reads: an object's response read straight from a record's attributes, with no
resolver, serialiser or position, by a reader made once per plan.

A selection is plain when every field in it, and in the objects and lists under it, is a record
attribute whose values are sent as they are (strings, ids, booleans, Ints within 32 bits,
finite Floats, ``__typename``): the planner (:mod:`gateway.graph.planner`) decides, and builds
the object's reader from the functions here, once per plan. A reader answers the common case;
anything else (a null where the schema forbids one, a value of another type, an attribute that
raised) raises, and the executor completes the object the general way, which locates the
error. Values are read again there: they are records' attributes, with no side effects.

Each field is a :class:`PlainRead`: a value of its ``sent`` type is the answer as it is; any
other goes to its ``other`` function (null, a number checked, a nested object or list read),
which raises :class:`NotPlain` for what plain reading does not send. What a field is was
worked out when the reader was made: no value is asked what kind of field it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from math import isfinite
from typing import Any, NamedTuple, NoReturn

__all__ = [
    "NotPlain",
    "PlainRead",
    "Reader",
    "float_read",
    "int_read",
    "leaf_read",
    "list_read",
    "object_read",
    "object_reader",
    "typename_read",
]

# A value to its place in the response (NotPlain: read it the general way).
Reader = Callable[[Any], Any]

MIN_INT, MAX_INT = -(2**31), 2**31 - 1  # GraphQL's Int


class NotPlain(Exception):
    """A value plain reading does not send as it is: it is read again the general way. Raised
    anew each time (rarely: a class seen first, or an error), so that no instance keeps the
    frames of its last raise alive."""


class PlainRead(NamedTuple):
    """One field of a plain selection."""

    key: str  # the response key
    attribute: str  # the record attribute read
    sent: type | None  # values of exactly this type are sent as they are (None: no value is)
    other: Reader  # the answer for any other value (or NotPlain)


def object_reader(reads: Sequence[PlainRead], accepted: Container[type], *,
                  nullable: bool) -> Reader:
    """The reader of an object: a record of a class in ``accepted`` (the classes its type's
    ``is_type_of`` took: the set grows as the executor meets new ones) read field by field;
    null when ``nullable``."""
    # As plain tuples: unpacking one is quicker than unpacking a named tuple (a subclass).
    fields = tuple((key, attribute, sent, other) for key, attribute, sent, other in reads)

    def read(source: Any) -> Any:
        if type(source) not in accepted:
            if source is None and nullable:
                return None
            raise NotPlain
        out: dict[str, Any] = {}
        for key, attribute, sent, other in fields:
            value = getattr(source, attribute)
            out[key] = value if type(value) is sent else other(value)
        return out

    return read


def list_read(key: str, attribute: str, item: PlainRead, *, nullable: bool) -> PlainRead:
    """A list field whose items are read as ``item`` (its key and attribute unused)."""
    sent, other = item.sent, item.other

    def read_objects(value: Any) -> Any:
        if type(value) is not list and type(value) is not tuple:
            if value is None and nullable:
                return None
            raise NotPlain
        return list(map(other, value))

    def read_leaves(value: Any) -> Any:
        if type(value) is not list and type(value) is not tuple:
            if value is None and nullable:
                return None
            raise NotPlain
        for each in value:
            if type(each) is not sent:
                other(each)  # a null item, where the items may be null; else NotPlain
        return list(value)

    return PlainRead(key, attribute, None, read_objects if sent is None else read_leaves)


def object_read(key: str, attribute: str, reads: Sequence[PlainRead],
                accepted: Container[type], *, nullable: bool) -> PlainRead:
    """An object field (see :func:`object_reader`)."""
    return PlainRead(key, attribute, None, object_reader(reads, accepted, nullable=nullable))


def leaf_read(key: str, attribute: str, sent: type, *, nullable: bool) -> PlainRead:
    """A scalar or enum field whose values of type ``sent`` are sent as they are."""
    return PlainRead(key, attribute, sent, _null if nullable else _refuse)


def int_read(key: str, attribute: str, *, nullable: bool) -> PlainRead:
    """An ``Int`` field: an int within 32 bits is sent as it is (not a bool: Int sends 1)."""

    def read(value: Any) -> Any:
        if type(value) is int and MIN_INT <= value <= MAX_INT:
            return value
        return _null(value) if nullable else _refuse(value)

    return PlainRead(key, attribute, None, read)


def float_read(key: str, attribute: str, *, nullable: bool) -> PlainRead:
    """A ``Float`` field: a finite float is sent as it is (not an int: Float sends 3.0)."""

    def read(value: Any) -> Any:
        if type(value) is float and isfinite(value):
            return value
        return _null(value) if nullable else _refuse(value)

    return PlainRead(key, attribute, None, read)


def typename_read(key: str, name: str) -> PlainRead:
    """``__typename``: the type's name. Read from the attribute every object has (its class),
    whatever its value: the loop reads every field alike."""
    return PlainRead(key, "__class__", None, lambda _: name)


def _null(value: Any) -> None:
    if value is not None:
        raise NotPlain


def _refuse(value: Any) -> NoReturn:
    raise NotPlain
