"""A source's groups in a merged list's order: each table sorted once (``_in_order``) must put
the groups exactly where the merge's key (``_order_key``) puts them, ties by upstream id, missing
values last ascending and first descending, in every field and direction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import SourceKind
from gateway.graph.resolvers import _in_order, _order_key
from gateway.sources.query import Direction, GroupOrder, OrderField
from gateway.sources.records import GroupRecord, SourceInfo

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
    assert [id(g) for g in _in_order(records, order)] == [
        id(g) for g in reference(records, order)]
