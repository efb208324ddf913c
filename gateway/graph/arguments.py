"""A field's arguments as far as they are known before the request (the cost rule prices a
document before its variables are sent): absent, a literal, or a variable (:class:`Arg`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    print_ast,
    value_from_ast_untyped,
)

from gateway.graph.folding import Unknown

__all__ = ["Arg", "arg", "field_args", "object_fields", "strings", "value_of"]


@dataclass(frozen=True, slots=True)
class Arg:
    """An argument as far as it is known before the request: absent, a literal, or unknown."""

    node: ValueNode | None

    @property
    def given(self) -> bool:
        """The argument may be set (a literal other than null, or a variable)."""
        return self.node is not None and not isinstance(self.node, NullValueNode)

    @property
    def known(self) -> bool:
        return not _has_variable(self.node)

    def int_or(self, absent: int, unknown: int) -> int:
        node = self.node
        if node is None or isinstance(node, NullValueNode):
            return absent
        if isinstance(node, IntValueNode):
            return int(node.value)
        return unknown


def _has_variable(node: Any) -> bool:
    if isinstance(node, VariableNode):
        return True
    if isinstance(node, ListValueNode):
        return any(_has_variable(v) for v in node.values)
    if isinstance(node, ObjectValueNode):
        return any(_has_variable(f.value) for f in node.fields)
    return False


def field_args(node: FieldNode) -> dict[str, Arg]:
    return {a.name.value: Arg(a.value) for a in node.arguments or ()}


def value_of(arg: Arg) -> Any:
    """An argument's value as the resolver will see it, or :class:`Unknown` (a variable)."""
    if arg.node is None or not arg.known:
        return Unknown(print_ast(arg.node)) if arg.node is not None else None
    return value_from_ast_untyped(arg.node)


def arg(args: Mapping[str, Arg], name: str) -> Arg:
    return args.get(name, Arg(None))


def object_fields(arg: Arg) -> dict[str, Arg] | None:
    """The fields of an input object literal; None when the object is a variable."""
    if isinstance(arg.node, ObjectValueNode):
        return {f.name.value: Arg(f.value) for f in arg.node.fields}
    return None if arg.given else {}


def strings(arg: Arg) -> list[str] | None:
    """A literal list of strings (ids, source names); None when any of it is unknown."""
    node = arg.node
    if isinstance(node, StringValueNode):
        return [node.value]
    if isinstance(node, ListValueNode) and all(isinstance(v, StringValueNode)
                                               for v in node.values):
        return [v.value for v in node.values if isinstance(v, StringValueNode)]
    return None


