"""The fold rule, as the resolver and the cost rule ask it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.graph.cursors import DEFAULT_PAGE_SIZE
from gateway.graph.folding import NestedPage, Unknown, nested_page


@pytest.mark.parametrize(("calls", "page"), [
    ([{}], NestedPage(None, DEFAULT_PAGE_SIZE)),
    ([{"first": 5}, {"first": 5}], NestedPage(None, 5)),
    ([{"first": 5, "search": "red"}], NestedPage("red", 5)),
    ([{"first": 0}], NestedPage(None, 0)),
    ([{"first": 5, "search": Unknown("$s")}], NestedPage(None, 5)),  # any search folds
    ([{"first": 5, "after": None}], NestedPage(None, 5)),
    ([], None),  # no products asked
    ([{"first": 5}, {"first": 6}], None),  # groups ask different pages
    ([{"first": 5}, {"first": 5, "search": "x"}], None),
    ([{"first": 5, "after": "c"}], None),  # not a first page
    ([{"last": 5}], None),
    ([{"first": Unknown("$n")}], None),  # a page size not known yet never folds
    ([{"first": 101}], None),  # out of range: the nested field reports it
    ([{"first": -1}], None),
    ([{"search": "x" * 257}], None),  # too long: refused before any call
])
def test_every_group_asking_the_same_first_page_folds(calls: list[dict[str, Any]],
                                                       page: NestedPage | None) -> None:
    assert nested_page(calls) == page
