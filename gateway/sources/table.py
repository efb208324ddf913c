"""A source's whole group table as read: rows as decoded, made records when first read.

An uncached merged list of twenty groups, or ``nodes`` looking up five ids, reads a table of a
thousand; building a record of every row was a sixth of such a query's CPU. So an adapter may
hand the table its rows as msgspec decoded them (checked in C already: building one cannot
fail), with how to make a record of one and read its upstream id; a row becomes a record the
first time it is read, and stays one. Orders and indexes are made from the rows' names and ids
and kept with the table: a table is kept while the answers it came from are fresh, so a warm
merged list sorts nothing and a warm lookup by id reads no more of the table than its ids.

An adapter that hands records (``build`` None) gets the same table over them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from operator import attrgetter
from typing import Any, overload

from gateway.sources.records import GroupRecord

__all__ = ["GroupTable", "TableView"]

_upstream_id = attrgetter("upstream_id")
_name = attrgetter("name")  # a row's and a record's alike


class _Groups(Sequence[GroupRecord]):
    """Groups of a table at positions in it; a row is made a record where it is read."""

    _positions: Sequence[int]

    def _made(self, position: int) -> GroupRecord:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> GroupRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[GroupRecord]: ...

    def __getitem__(self, index: int | slice) -> GroupRecord | list[GroupRecord]:
        if isinstance(index, slice):
            return [self._made(p) for p in self._positions[index]]
        return self._made(self._positions[index])

    def __iter__(self) -> Iterator[GroupRecord]:
        return map(self._made, self._positions)


class GroupTable(_Groups):
    """The groups in upstream order; callers only read it."""

    def __init__(self, rows: Iterable[Any] = (), *,
                 build: Callable[[Any], GroupRecord] | None = None,
                 row_id: Callable[[Any], str] | None = None) -> None:
        self._rows = list(rows)
        self._positions = range(len(self._rows))
        self._build = build
        self._row_id = _upstream_id if build is None or row_id is None else row_id
        self._records: list[GroupRecord | None] = (
            list(self._rows) if build is None else [None] * len(self._rows))
        self._whole = build is None  # every row a record already
        # order → the rows' positions in it. Positions, not views: a view holds its table, and
        # a table holding its views would be a reference cycle, which only the garbage
        # collector frees (freeing an uncached merged list's tables there took up to a third
        # of its CPU, in process).
        self._orders: dict[Hashable, Sequence[int]] = {}
        self._found: dict[str, dict[str, int]] = {}

    def __iter__(self) -> Iterator[GroupRecord]:
        return iter(self.records())

    def record(self, position: int) -> GroupRecord:
        made = self._records[position]
        if made is None:
            assert self._build is not None
            made = self._records[position] = self._build(self._rows[position])
        return made

    _made = record

    def records(self) -> list[GroupRecord]:
        """Every group, each made a record (once)."""
        if not self._whole:
            build = self._build
            assert build is not None
            self._records = [made if made is not None else build(row)
                             for made, row in zip(self._records, self._rows, strict=True)]
            self._whole = True
        return self._records  # type: ignore[return-value]  # whole: no None left

    def upstream_ids(self) -> list[str]:
        """Each row's upstream id, in table order (no record made)."""
        return list(map(self._row_id, self._rows))

    def names(self) -> list[str | None]:
        """Each row's name, in table order (no record made)."""
        return list(map(_name, self._rows))

    def find(self, field: str, values: Iterable[str]) -> dict[str, GroupRecord]:
        """The groups whose ``field`` (``upstream_id``, ``external_id``) is one of ``values``,
        by it: the last one of a value that several share. Only the groups found are made."""
        positions = self._found.get(field)
        if positions is None:
            if field == "upstream_id":
                positions = {value: i for i, value in enumerate(self.upstream_ids())}
            else:
                positions = {value: i for i, group in enumerate(self.records())
                             if (value := getattr(group, field)) is not None}
            self._found[field] = positions
        return {value: self.record(positions[value]) for value in values if value in positions}

    def ordered(self, order: Hashable, arrange: Callable[[GroupTable], Sequence[int]]
                ) -> TableView:
        """The table in ``order``: ``arrange(table)`` gives the rows' positions in it, the first
        time (an equal order later reads them again)."""
        positions = self._orders.get(order)
        if positions is None:
            positions = self._orders[order] = arrange(self)
        return TableView(self, positions)


class TableView(_Groups):
    """Some of a table's groups in some order (positions in it): a row becomes a record when
    the view is read there, so a page of a merged list makes only its own."""

    def __init__(self, table: GroupTable, positions: Sequence[int]) -> None:
        self._table = table
        self._positions = positions

    def _made(self, position: int) -> GroupRecord:
        return self._table.record(position)
