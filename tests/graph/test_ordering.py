"""A source's groups in a merged list's order: each table sorted once (``_in_order``) must put
the groups exactly where the merge's key (``_order_key``) puts them, ties by upstream id, missing
values last ascending and first descending, in every field and direction."""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import SourceKind
from gateway.graph.resolvers import _in_order, _order_key
from gateway.sources.query import Direction, GroupOrder, OrderField
from gateway.sources.records import GroupRecord, SourceInfo
from gateway.sources.table import GroupTable

SOURCE = SourceInfo("s", SourceKind.JOPTIC, ())
START = datetime(2024, 1, 1, tzinfo=UTC)
names = st.one_of(st.none(), st.sampled_from(["a", "A", "b", "B", "é", "É", "ß", "ss", ""]))
times = st.one_of(st.none(), st.integers(0, 3).map(lambda d: START + timedelta(days=d)))
groups = st.lists(st.tuples(st.sampled_from("0123456789"), names, times, times), max_size=40)
orders = st.builds(GroupOrder, st.sampled_from(list(OrderField)), st.sampled_from(list(Direction)))


def reference(records: list[GroupRecord], order: GroupOrder) -> list[GroupRecord]:
    """The order by its definition: by id, then stably by the merge's key."""
    by_id = sorted(records, key=lambda g: g.upstream_id)
    return sorted(by_id, key=_order_key(order), reverse=order.direction is Direction.DESC)


@settings(max_examples=300, deadline=None)
@given(rows=groups, order=orders)
def test_a_table_in_order_is_the_merge_keys_order(
        rows: list[tuple[str, str | None, datetime | None, datetime | None]],
        order: GroupOrder) -> None:
    records = [GroupRecord(source=SOURCE, upstream_id=uid, name=name, created_at=created,
                           updated_at=updated) for uid, name, created, updated in rows]
    positions = _in_order(GroupTable(records), order)
    assert [id(records[p]) for p in positions] == [id(g) for g in reference(records, order)]


@dataclass(frozen=True)
class Row:
    """A row as an adapter decoded it: a name, an id under its own field name."""

    key: str
    name: str | None


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from("0123456789"), names), max_size=40),
       direction=st.sampled_from(list(Direction)))
def test_a_table_of_rows_is_ordered_by_name_without_making_records(
        rows: list[tuple[str, str | None]], direction: Direction) -> None:
    made: list[Row] = []

    def build(row: Row) -> GroupRecord:
        made.append(row)
        return GroupRecord(source=SOURCE, upstream_id=row.key, name=row.name)

    table = GroupTable([Row(key, name) for key, name in rows], build=build,
                       row_id=attrgetter("key"))
    order = GroupOrder(OrderField.NAME, direction)
    view = table.ordered(order, lambda t: _in_order(t, order))
    arranged: list[int] = []

    def again(t: GroupTable) -> list[int]:
        arranged.append(1)
        return []

    assert len(table.ordered(order, again)) == len(view)  # the order kept, not arranged again
    assert made == [] and arranged == []
    records = [GroupRecord(source=SOURCE, upstream_id=key, name=name) for key, name in rows]
    expected = [(g.upstream_id, g.name) for g in reference(records, order)]
    assert [(g.upstream_id, g.name) for g in view[:3]] == expected[:3]
    assert len(made) == min(3, len(rows))  # only the groups read were made
    assert [(g.upstream_id, g.name) for g in view] == expected


def test_a_table_and_its_orders_are_freed_without_the_garbage_collector() -> None:
    """An uncached merged list's tables leave with their request, freed by reference counting:
    a table kept in a cycle (with its views) waited for a collection, a third of the query's
    CPU."""
    table = GroupTable([Row(str(i), f"g{i}") for i in range(10)], build=lambda row: GroupRecord(
        source=SOURCE, upstream_id=row.key, name=row.name), row_id=attrgetter("key"))
    order = GroupOrder(OrderField.NAME, Direction.ASC)
    view = table.ordered(order, lambda t: _in_order(t, order))
    assert view[0].name == "g0"
    freed = weakref.ref(table)
    gc.disable()
    try:
        del table, view
        assert freed() is None
    finally:
        gc.enable()


def test_a_table_of_rows_finds_ids_making_only_the_groups_found() -> None:
    made: list[str] = []

    def build(row: Row) -> GroupRecord:
        made.append(row.key)
        return GroupRecord(source=SOURCE, upstream_id=row.key, name=row.name)

    table = GroupTable([Row(str(i), f"g{i}") for i in range(100)], build=build,
                       row_id=attrgetter("key"))
    found = table.find("upstream_id", ["7", "42", "nope"])
    assert sorted(found) == ["42", "7"] and sorted(made) == ["42", "7"]
    assert found["7"] is table[7] and len(made) == 2  # made once
    assert [g.name for g in table.find("external_id", ["x"]).values()] == []
    assert len(made) == 100  # another field: every group made (once)
    assert table[-1].upstream_id == "99" and [g.upstream_id for g in table[98:]] == ["98", "99"]
