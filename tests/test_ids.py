"""Versioned global ids: round trips, and None for anything that is not one of ours."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.ids import NodeKey, NodeType, decode_id, encode_id

PROPERTY = settings(max_examples=200, deadline=None)

# Unicode (no lone surrogates), with ':' and JSON/base64-significant characters likely.
id_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(':"\\/=+-_ []{},é中🙂'), st.characters(exclude_categories=["Cs"])
    ),
    max_size=20,
)


def raw_id(payload: Any) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@PROPERTY
@given(source=id_text, upstream_id=id_text)
@example(source="joptic", upstream_id="a:b:c")
@example(source="", upstream_id="")
def test_group_ids_round_trip(source: str, upstream_id: str) -> None:
    key = NodeKey(NodeType.PRODUCT_GROUP, source, upstream_id)
    value = encode_id(key)
    assert value.isascii() and not set(value) & {"=", "+", "/"}
    assert decode_id(value) == key


@PROPERTY
@given(source=id_text, upstream_id=id_text, group_id=st.one_of(st.none(), id_text))
@example(source="axim", upstream_id="p:1", group_id="g:1")
@example(source="axim", upstream_id="p", group_id="")
def test_product_ids_round_trip(source: str, upstream_id: str, group_id: str | None) -> None:
    key = NodeKey(NodeType.PRODUCT, source, upstream_id, group_id)
    assert decode_id(encode_id(key)) == key


@PROPERTY
@given(source=id_text, upstream_id=st.one_of(id_text, st.text(max_size=20)), group_id=id_text)
@example(source="axim", upstream_id="a\x7fb", group_id="\x00\n\"")
@example(source="axim", upstream_id="\ud800", group_id="g")
def test_an_id_is_the_same_whatever_its_characters(source: str, upstream_id: str,
                                                    group_id: str) -> None:
    # Ids clients hold stay valid: every id is the URL-safe base64 of the standard library's
    # ASCII JSON, whichever encoder made it.
    parts = ["1", "P", source, upstream_id, group_id]
    expected = base64.urlsafe_b64encode(json.dumps(parts, separators=(",", ":")).encode())
    key = NodeKey(NodeType.PRODUCT, source, upstream_id, group_id)
    assert encode_id(key) == expected.rstrip(b"=").decode("ascii")


def test_ids_are_distinct_across_types_sources_and_groups() -> None:
    keys = [
        NodeKey(NodeType.PRODUCT_GROUP, "s", "1"),
        NodeKey(NodeType.PRODUCT, "s", "1"),
        NodeKey(NodeType.PRODUCT, "s", "1", "g"),
        NodeKey(NodeType.PRODUCT, "s", "1", ""),
        NodeKey(NodeType.PRODUCT, "t", "1"),
        NodeKey(NodeType.PRODUCT, "s:1", ""),
    ]
    assert len({encode_id(k) for k in keys}) == len(keys)


@PROPERTY
@given(garbage=st.text(max_size=60))
@example(garbage="")
@example(garbage="é")
@example(garbage="!!!!")
def test_garbage_decodes_to_none(garbage: str) -> None:
    assert decode_id(garbage) is None


@PROPERTY
@given(payload=st.binary(max_size=60))
def test_garbage_bytes_decode_to_none(payload: bytes) -> None:
    assert decode_id(base64.urlsafe_b64encode(payload).decode("ascii")) is None


@pytest.mark.parametrize(
    "payload",
    [
        ["2", "G", "s", "1"],  # another version
        [1, "G", "s", "1"],
        ["0", "P", "s", "1", "g"],
        ["1", "G", "s"],  # wrong arity
        ["1", "P", "s", "1", "g", "x"],
        ["1"],
        [],
        ["1", "X", "s", "1"],  # unknown type
        ["1", "G", "s", 1],  # not strings
        ["1", "P", "s", "1", None],
        ["1", "G", ["s"], "1"],
        {"v": "1"},
        "1",
        17,
        None,
    ],
)
def test_foreign_payloads_decode_to_none(payload: Any) -> None:
    assert decode_id(raw_id(payload)) is None


def test_deeply_nested_json_decodes_to_none() -> None:
    assert decode_id(base64.urlsafe_b64encode(b"[" * 100_000).decode("ascii")) is None


def test_an_upstream_id_with_a_lone_surrogate_encodes() -> None:
    upstream_id = json.loads('"a\\ud800"')
    key = NodeKey(NodeType.PRODUCT, "s", upstream_id)
    assert decode_id(encode_id(key)) == key
