"""The base class of the source adapters, and the defaults it gives every kind.

An adapter translates: GraphQL-level intent (a filter, an offset window, ids) into its upstream's
requests, and the upstream's JSON into :mod:`gateway.sources.records`. HTTP policy (retries,
breaker, the response cache) is the upstream client's (:class:`~gateway.upstream.UpstreamClient`);
adapters know nothing of GraphQL.

What a kind cannot do, the base class answers: an empty product list for groups without products,
:class:`~gateway.errors.Unsupported` for a list the kind does not have, and lookups by id through
the source's whole group table for upstreams without a get-by-id endpoint. The group table is read
once per request (bounded by ``scan_limit``) and, parsed, kept in the process per language the
source answers in (:meth:`SourceAdapter.language`: one table for a source that ignores languages,
whatever clients send) while the upstream answers it was read from are fresh, so a warm scan costs
no decoding; a kept :class:`GroupTable` keeps its orders and indexes too, so a warm merged page or
lookup by id costs no sort and no scan. Tables are kept in the client's
:data:`~gateway.upstream.client.Memo`, with decoded answers and parsed records: one byte bound per
process.

Answers are decoded by msgspec straight into each adapter's typed shapes (:meth:`SourceAdapter.
decode`), and the ids a request looks up reach each source at once (:meth:`SourceAdapter.lookup`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import msgspec

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import SourceConfig, SourceKind
from gateway.errors import Unsupported, UpstreamBadResponse
from gateway.scope import RequestScope
from gateway.shared import gather
from gateway.sources.query import GroupFilter, ProductFields, ProductFilter
from gateway.sources.records import Capability, GroupRecord, ProductRecord, SourceInfo
from gateway.sources.shape import ShapeError
from gateway.sources.table import GroupTable
from gateway.upstream.client import UpstreamClient
from gateway.upstream.paging import read_all
from gateway.window import Page, Window

__all__ = ["GroupTable", "GroupsWithProducts", "Lookup", "ProductKey", "SourceAdapter",
           "both_parts"]

# The memory of a group record without its strings (measured: 355-520 bytes) with its place in
# each order its table is kept in (8 bytes, at most six orders) and in each index (about 64
# bytes, two of them), rounded up; and of each character of its strings (1 for ASCII, up to 4
# otherwise).
GROUP_RECORD_BYTES = 768
BYTES_PER_CHARACTER = 2

# A product as its id names it: (upstream id, group id or None).
ProductKey = tuple[str, str | None]
GroupsWithProducts = tuple[Page[GroupRecord], dict[str, Page[ProductRecord]]]
Changed = TypeVar("Changed", GroupRecord, ProductRecord)
Decoded = TypeVar("Decoded")
# Items per request when reading what changed, newest first (most polls find a few).
CHANGES_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Lookup:
    """What one source found of the ids a request looks up at once: its groups by upstream id
    and its products by key, each part the failure that stopped it instead (apart: one part
    failing leaves the other's answer)."""

    groups: dict[str, GroupRecord] | BaseException
    products: dict[ProductKey, ProductRecord] | BaseException


@dataclass(frozen=True, slots=True)
class ReadCost:
    """What reading a source costs in upstream requests, declared by its adapter beside its
    capabilities. The cost rule (:mod:`gateway.graph.cost`) prices every read from this and
    from nothing else it knows of a kind: a kind without one is refused at start-up
    (:func:`read_cost_of`), so a new source cannot be silently mispriced."""

    list_page: int | None  # most items one list request returns (None: any window in one)
    # The group filter arguments (as clients spell them) the upstream applies itself: a list
    # filtered otherwise reads the whole group table (:meth:`SourceAdapter.unpushable`).
    pushed_filters: frozenset[str] = frozenset()
    parents: bool = False  # its groups name a parent (a parent walk reads the table)
    by_id_limit: int = 0  # groups fetched one by one by id up to this many; more read the table
    # A group fetched by id comes with its first page of products: a lookup of the group and of
    # products in it is one call, and only the other groups count towards ``by_id_limit``.
    by_id_carries_products: bool = False
    # Most products of a group one request carries: a page of a group's products, and the
    # first page a group list's own call can carry for every group (the fold rule). 0: its
    # groups have no products of their own.
    products_page: int = 0


class UndeclaredReadCost(TypeError):
    """A source kind whose adapter declares no :class:`ReadCost`."""


def read_cost_of(adapter: SourceAdapter) -> ReadCost:
    """The adapter's declared read cost; :class:`UndeclaredReadCost` when it has none."""
    declared = getattr(type(adapter), "read_cost", None)
    if not isinstance(declared, ReadCost):
        raise UndeclaredReadCost(
            f"the {adapter.kind} adapter ({type(adapter).__name__}) declares no read cost: "
            "set `read_cost = ReadCost(...)` beside its capabilities, or the cost rule could "
            "not price its reads")
    return declared


class SourceAdapter:
    """Base of the per-kind adapters. Subclasses set ``kind``, ``capabilities`` and
    ``read_cost``."""

    kind: ClassVar[SourceKind]
    capabilities: ClassVar[tuple[Capability, ...]] = ()
    read_cost: ClassVar[ReadCost]  # no default: every kind declares its own
    # Items per request when reading the whole group table (None: all in one request).
    table_page_size: ClassVar[int | None] = None

    def __init__(self, config: SourceConfig, client: UpstreamClient, *,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.client = client
        self.name = config.name
        self.info = SourceInfo(config.name, self.kind, self.capabilities)
        self._clock = clock
        # The last group table read: its size, and its largest group's product count (where
        # the upstream says). The cost model prices a scan from them (gateway/graph/cost.py).
        self.table_size: int | None = None
        self.largest_group: int | None = None

    @contextlib.contextmanager
    def reading(self, what: str) -> Iterator[None]:
        """Read ``what`` from an answer: a shape not expected is UPSTREAM_BAD_RESPONSE, naming
        the source (and the field), never the URL or the body."""
        try:
            yield
        except ShapeError as exc:
            raise UpstreamBadResponse(f"source '{self.name}' answered an unexpected {what} "
                                      f"({exc})", source=self.name) from None

    def decode(self, decoder: msgspec.json.Decoder[Decoded], body: bytes) -> Decoded:
        """An answer's bytes decoded straight into its typed shape by msgspec (types checked in
        C, unknown fields skipped, no intermediate dicts); a shape not expected is
        UPSTREAM_BAD_RESPONSE, and bytes that are not JSON say so (neither quotes the body)."""
        try:
            return decoder.decode(body)
        except msgspec.ValidationError as exc:
            with self.reading("response"):
                raise ShapeError(str(exc)) from None
        except msgspec.DecodeError:
            raise UpstreamBadResponse(f"source '{self.name}' answered malformed JSON",
                                      source=self.name) from None

    @classmethod
    def auth_headers(cls, token: str) -> dict[str, str]:
        """The headers that carry the source's credential."""
        return {"Authorization": f"Bearer {token}"}

    def language(self, scope: RequestScope) -> str | None:
        """The language this source answers the request in, chosen from the client's ranges
        among the source's own; None for a source that ignores languages (the default): then
        the language is in none of its calls, cache keys or tables."""
        return None

    # -- groups ---------------------------------------------------------------------------------

    def unpushable(self, group_filter: GroupFilter) -> str | None:
        """The first filter argument the upstream cannot apply itself (not in its declared
        ``pushed_filters``), or None if it can apply them all."""
        pushed = self.read_cost.pushed_filters
        return next((a for a in group_filter.active_arguments() if a not in pushed), None)

    async def list_groups(
        self, group_filter: GroupFilter, window: Window, scope: RequestScope
    ) -> Page[GroupRecord]:
        """A window of the upstream's groups in its own order, filtered by the upstream.

        Called only when :meth:`unpushable` is None for ``group_filter``.
        """
        raise Unsupported(self.name, "productGroups", "this source has no product groups")

    async def list_groups_with_products(
        self,
        group_filter: GroupFilter,
        window: Window,
        product_search: str | None,
        product_window: Window,
        scope: RequestScope,
    ) -> GroupsWithProducts | None:
        """Groups and each group's first product page in one call, where the upstream can."""
        return None

    async def group_table(self, scope: RequestScope) -> GroupTable:
        """Every group of the source in upstream order (at most ``scan_limit``)."""
        table: GroupTable = await scope.group_tables.once(self.name,
                                                          lambda: self._kept_table(scope))
        return table

    def table_is_kept(self, scope: RequestScope) -> bool:
        """Whether the request would read the group table without a call (kept, fresh)."""
        return self.name in scope.group_tables or self._fresh_kept(scope) is not None

    def _fresh_kept(self, scope: RequestScope) -> tuple[float, GroupTable] | None:
        # Kept by language and credential (a client's own token may see other groups):
        # (clock.wall() until which the upstream answers it was read from stay
        # fresh, table). A table never outlives the answers it came from.
        kept: tuple[float, GroupTable] | None = self.client.memo.get(self._table_key(scope))
        if kept is None or scope.refresh or self._clock.wall() >= kept[0]:
            return None
        return kept

    def _table_key(self, scope: RequestScope) -> tuple[str, ...]:
        return ("table", self.name, self.language(scope) or "",
                scope.credential_fingerprint(self.name))

    async def _kept_table(self, scope: RequestScope) -> GroupTable:
        kept = self._fresh_kept(scope)
        if kept is not None:
            fresh_until, kept_table = kept
            scope.fresh_for(fresh_until)
            return kept_table
        # The table's freshness is that of the answers read for it: measured apart from the
        # rest of the request (what other fields note meanwhile only shortens it).
        before, scope.fresh_until = scope.fresh_until, float("inf")
        try:
            table = await self._read_group_table(scope)
        finally:
            fresh_until, scope.fresh_until = scope.fresh_until, before
        self.table_size = len(table)
        if Capability.GROUP_PRODUCTS in self.capabilities:  # only these count products
            self.largest_group = max(filter(None, [g.product_count for g in table]), default=0)
        else:
            self.largest_group = 0
        scope.fresh_for(fresh_until)
        if self.name not in scope.stale and fresh_until > self._clock.wall():
            self.client.memo.put(self._table_key(scope), (fresh_until, table),
                                 _table_bytes(table))
        return table

    async def _read_group_table(self, scope: RequestScope) -> GroupTable:
        rows = await read_all(lambda window: self.table_rows(window, scope),
                              self.table_page_size or self.config.scan_limit,
                              check_total=self.within_scan_limit, exact=scope.refresh)
        return self.table_of(rows)

    async def table_rows(self, window: Window, scope: RequestScope) -> Page[Any]:
        """A window of the group table, unfiltered, in upstream order: records here; an adapter
        may answer its rows as decoded instead, and make them a table in :meth:`table_of`."""
        return await self.list_groups(GroupFilter(), window, scope)

    def table_of(self, rows: list[Any]) -> GroupTable:
        """The table of the rows :meth:`table_rows` read."""
        return GroupTable(rows)

    def within_scan_limit(self, total: int, what: str = "groups") -> None:
        """Refuse a whole list of ``total`` items larger than the configured ``scan_limit``."""
        limit = self.config.scan_limit
        if total > limit:
            raise Unsupported(self.name, "this query",
                              f"it needs the whole list ({total} {what}), larger than the "
                              f"configured scan_limit ({limit})")

    async def groups_by_ids(
        self, ids: Sequence[str], scope: RequestScope
    ) -> dict[str, GroupRecord]:
        """The groups with these upstream ids (unknown ids are absent)."""
        return (await self.group_table(scope)).find("upstream_id", ids)

    async def groups_by_external_ids(
        self, ids: Sequence[str], scope: RequestScope
    ) -> dict[str, GroupRecord]:
        """The groups with these external ids (CareCloud parents may be named only so; the
        last of the table's groups that share one)."""
        return (await self.group_table(scope)).find("external_id", ids)

    async def lookup(self, group_ids: Sequence[str], product_keys: Sequence[ProductKey],
                     fields: ProductFields, scope: RequestScope) -> Lookup:
        """The groups and products a request looks up by id at once (``nodes(ids:)``), each
        part on its own; a source whose calls can serve both parts plans them together."""
        return await both_parts(
            self.lookup_groups(group_ids, product_keys, scope) if group_ids else None,
            self.products_by_keys(product_keys, fields, scope) if product_keys else None)

    async def lookup_groups(self, ids: Sequence[str], product_keys: Sequence[ProductKey],
                            scope: RequestScope) -> dict[str, GroupRecord]:
        """A lookup's groups, knowing the products looked up with them (a source whose call
        for a group also carries its products plans the two together)."""
        return await self.groups_by_ids(ids, scope)

    # -- products -------------------------------------------------------------------------------

    async def group_products(
        self, group_id: str, search: str | None, window: Window, scope: RequestScope
    ) -> Page[ProductRecord]:
        """A window of one group's products; groups of sources without products have none."""
        return Page([], 0)

    def check_product_filter(self, product_filter: ProductFilter) -> None:
        """Raise :class:`~gateway.errors.BadUserInput` naming the argument for a filter value
        the upstream cannot take; called before any upstream call of the list."""

    async def list_products(
        self,
        product_filter: ProductFilter,
        window: Window,
        fields: ProductFields,
        scope: RequestScope,
    ) -> Page[ProductRecord]:
        raise Unsupported(
            self.name,
            "products",
            "this source lists products only inside groups (ProductGroup.products)",
        )

    async def products_by_keys(
        self, keys: Sequence[ProductKey], fields: ProductFields, scope: RequestScope
    ) -> dict[ProductKey, ProductRecord]:
        """The products these keys name (unknown ones are absent)."""
        return {}


    # -- changes (the change feed's polls: gateway/changes) -------------------------------------

    async def groups_changed_since(self, since: datetime, scope: RequestScope
                                   ) -> list[GroupRecord] | None:
        """The groups changed at or after ``since``; None where the upstream cannot say (the
        poller then compares the whole group table)."""
        return None

    async def products_changed_since(self, since: datetime, scope: RequestScope
                                     ) -> list[ProductRecord] | None:
        """The products changed at or after ``since``; None where the upstream cannot say."""
        return None

    async def product_listing(self, scope: RequestScope) -> list[ProductRecord]:
        """Every product of the source (within ``scan_limit``): what deletions are found in."""
        return []

    async def newest_first(self, fetch: Callable[[Window], Awaitable[Page[Changed]]],
                           since: datetime) -> list[Changed]:
        """Read a list sorted by change time, newest first, until an item older than ``since``
        (an item without a change time never stops it), within ``scan_limit`` items."""
        found: list[Changed] = []
        while len(found) < self.config.scan_limit:
            page = await fetch(Window(len(found), CHANGES_PAGE_SIZE))
            for item in page.items:
                if item.updated_at is not None and item.updated_at < since:
                    return found
                found.append(item)
            if not page.items or (page.total is not None and len(found) >= page.total):
                break
        return found


async def both_parts(groups: Awaitable[dict[str, GroupRecord]] | None,
                     products: Awaitable[dict[ProductKey, ProductRecord]] | None) -> Lookup:
    """A lookup's two parts, each its answer or the failure that stopped it (concurrent; a
    part that has nothing to look up is empty)."""
    asked = [part for part in (groups, products) if part is not None]
    found = iter(await gather(*asked, return_exceptions=True))
    return Lookup(next(found) if groups is not None else {},
                  next(found) if products is not None else {})


def _table_bytes(table: GroupTable) -> int:
    """The estimated memory of a parsed group table."""
    characters = sum(len(value) for record in table for name in GroupRecord.__struct_fields__
                     if isinstance(value := getattr(record, name), str))
    return GROUP_RECORD_BYTES * len(table) + BYTES_PER_CHARACTER * characters
