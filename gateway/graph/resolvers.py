"""Resolvers of the lists and lookups: arguments → streams → a connection.

Filters and orders go to an upstream when it can apply them (a :class:`WindowStream`); otherwise
the source's whole group table is read once per request, bounded by its ``scan_limit``, and
filtered and ordered here (a :class:`ListStream`). A merged order across sources always uses the
tables, so the order is the gateway's own (case-folded Unicode names), whatever each upstream's
collation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from operator import attrgetter
from typing import Any, NoReturn

from strawberry.types import Info

from gateway.errors import BadUserInput, GatewayError, Unsupported
from gateway.graph.connection import Connection
from gateway.graph.context import GatewayContext
from gateway.graph.cursors import Fingerprint, PageArgs
from gateway.graph.folding import NestedPage, nested_page
from gateway.graph.inputs import (
    ProductFilter,
    ProductGroupFilter,
    ProductGroupOrder,
    bounded,
)
from gateway.graph.listing import (
    ErrorSink,
    ListStream,
    Stream,
    WindowStream,
    concatenated,
    merged,
)
from gateway.graph.lookahead import arguments, item_fields, wants
from gateway.graph.strawberry_internals import raw_info
from gateway.ids import decode_id
from gateway.sources.base import SourceAdapter
from gateway.sources.query import (
    ALL_PRODUCT_FIELDS,
    Direction,
    GroupFilter,
    GroupOrder,
    OrderField,
)
from gateway.sources.records import Capability, GroupRecord, ProductRecord
from gateway.sources.table import GroupTable
from gateway.window import Page, Window

__all__ = ["group_products", "node", "nodes", "product_groups", "products"]

GraphInfo = Info[GatewayContext, None]


def _sources(context: GatewayContext, requested: list[Any] | None, capability: Capability,
             field: str) -> list[SourceAdapter]:
    """The adapters a list covers, in configured order."""
    capable = [a for a in context.adapters.values() if capability in a.capabilities]
    if requested is None:
        return capable
    for name in requested:
        if name not in context.adapters:
            known = ", ".join(context.adapters)
            raise BadUserInput(f"unknown source '{name}' in filter.sources (known: {known})")
        if context.adapters[name] not in capable:
            raise Unsupported(name, field)
    return [a for a in capable if a.name in set(requested)]


def _reporter(info: GraphInfo) -> ErrorSink:
    path = list(info.path.as_list())
    return lambda error: info.context.report(error, path)


def _raise(error: GatewayError) -> NoReturn:
    raise error


# -- product groups -----------------------------------------------------------------------------


async def product_groups(info: GraphInfo, first: int | None, after: str | None,
                         last: int | None, before: str | None, filter: ProductGroupFilter | None,
                         order_by: ProductGroupOrder | None) -> Connection[Any]:
    context = info.context
    args = PageArgs.parse(first, after, last, before, cursors=context.cursors)
    group_filter = filter.to_query() if filter else GroupFilter()
    adapters = _sources(context, filter.sources if filter else None, Capability.PRODUCT_GROUPS,
                        "productGroups")
    order = order_by.to_query() if order_by else None
    fp = Fingerprint("groups", [a.name for a in adapters], group_filter, order)
    report = _reporter(info)
    if order is not None:
        key, descending = _order_key(order), order.direction is Direction.DESC
        tables = [ListStream(a.name, _ordered_loader(context, a, group_filter, order))
                  for a in adapters]
        listing = await merged(tables, key, descending, args, fp, report)
    else:
        nested = _nested_products(info)
        streams = [_group_stream(context, a, group_filter, nested) for a in adapters]
        listing = await concatenated(streams, args, fp, report,
                                     need_total=wants(info, "totalCount"))
    return Connection.of(listing, context.cursors)  # type: ignore[no-any-return]


def _table_loader(context: GatewayContext, adapter: SourceAdapter, group_filter: GroupFilter
                  ) -> Callable[[], Any]:
    async def load() -> list[GroupRecord]:
        table = await adapter.group_table(context.scope)
        return [g for g in table if group_filter.matches(g)]

    return load


def _group_stream(context: GatewayContext, adapter: SourceAdapter, group_filter: GroupFilter,
                  nested: NestedPage | None) -> Stream[GroupRecord]:
    if adapter.unpushable(group_filter) is not None:
        return ListStream(adapter.name, _table_loader(context, adapter, group_filter))

    async def fetch(window: Window) -> Page[GroupRecord]:
        if nested is not None and Capability.GROUP_PRODUCTS in adapter.capabilities:
            search, size = nested.search, nested.size
            both = await adapter.list_groups_with_products(group_filter, window, search,
                                                           Window(0, size), context.scope)
            if both is not None:
                groups, products = both
                for group_id, page in products.items():
                    key = (adapter.name, group_id, search, 0, size)
                    context.loaders.group_products.prime(key, page)
                return groups
        return await adapter.list_groups(group_filter, window, context.scope)

    return WindowStream(adapter.name, fetch)


def _nested_products(info: GraphInfo) -> NestedPage | None:
    """The page every listed group asks its products for, when they all ask the same first
    page (the fold rule, :mod:`gateway.graph.folding`: the cost rule prices it the same way)."""
    return nested_page([arguments(info, f) for f in item_fields(info)
                        if f.name.value == "products"])


def _ordered_loader(context: GatewayContext, adapter: SourceAdapter, group_filter: GroupFilter,
                    order: GroupOrder) -> Callable[[], Any]:
    """A source's groups that match, in ``order``: its table is sorted once while it is kept
    (a warm merged list sorts nothing), then filtered (which keeps the order)."""
    async def load() -> Sequence[GroupRecord]:
        table = await adapter.group_table(context.scope)
        ordered = table.ordered(order, lambda t: _in_order(t, order))
        if not group_filter.active_arguments():
            return ordered  # its groups are made records as the page reads them
        return [g for g in ordered if group_filter.matches(g)]

    return load


# Names case-folded lately: an uncached merged list folds each source's thousand names again,
# and folding a non-ASCII name (most of CareCloud's) costs three times looking it up.
_casefold = lru_cache(maxsize=16384)(str.casefold)


def _order_value(order: GroupOrder) -> Callable[[GroupRecord], Any]:
    """What a group is ordered by: its name case-folded, or a time; None when it has none."""
    if order.field is OrderField.NAME:
        return lambda group: None if group.name is None else _casefold(group.name)
    return attrgetter("created_at" if order.field is OrderField.CREATED_AT else "updated_at")


def _order_key(order: GroupOrder) -> Callable[[GroupRecord], tuple[bool, Any]]:
    """The merged order's key: the order's value, missing values last ascending and first
    descending; ties are in stream (configured source) order."""
    value = _order_value(order)

    def key(group: GroupRecord) -> tuple[bool, Any]:
        found = value(group)
        return (True, 0) if found is None else (False, found)

    return key


def _in_order(table: GroupTable, order: GroupOrder) -> list[int]:
    """The positions of one source's groups in ``order`` (as :func:`_order_key` orders them);
    ties by upstream id in both directions (stable sorts keep the order by id among equal
    values). A fresh table of a thousand groups is sorted on every uncached merged query, so
    each value is worked out once and both sorts look keys up in C; by name, from the table's
    rows: no group is made a record for it."""
    ids = table.upstream_ids()
    if order.field is OrderField.NAME:
        names = table.names()
        values: list[Any] = (list(map(_casefold, names)) if None not in names else
                             [None if name is None else _casefold(name) for name in names])
    else:
        values = list(map(_order_value(order), table.records()))
    positions = sorted(range(len(ids)), key=ids.__getitem__)
    missing: list[int] = []
    if None in values:
        missing = [p for p in positions if values[p] is None]
        positions = [p for p in positions if values[p] is not None]
    descending = order.direction is Direction.DESC
    positions.sort(key=values.__getitem__, reverse=descending)
    return missing + positions if descending else positions + missing


# -- products -----------------------------------------------------------------------------------


async def group_products(info: GraphInfo, group: GroupRecord, first: int | None,
                         after: str | None, last: int | None, before: str | None,
                         search: str | None) -> Connection[Any]:
    context = info.context
    args = PageArgs.parse(first, after, last, before, cursors=context.cursors)
    bounded("search", search)
    source = group.source.id
    fp = Fingerprint("group-products", source, group.upstream_id, search)

    async def fetch(window: Window) -> Page[ProductRecord]:
        return await context.loaders.group_products.load(
            (source, group.upstream_id, search, window.offset, window.limit))

    stream = WindowStream(source, fetch)
    listing = await concatenated([stream], args, fp, _raise, need_total=wants(info, "totalCount"))
    return Connection.of(listing, context.cursors)  # type: ignore[no-any-return]


async def products(info: GraphInfo, first: int | None, after: str | None, last: int | None,
                   before: str | None, filter: ProductFilter | None) -> Connection[Any]:
    context = info.context
    args = PageArgs.parse(first, after, last, before, cursors=context.cursors)
    product_filter = filter.to_query() if filter else ProductFilter().to_query()
    adapters = _sources(context, filter.sources if filter else None, Capability.PRODUCTS,
                        "products")
    for adapter in adapters:  # what a source cannot take is refused before any call
        adapter.check_product_filter(product_filter)
    fields = frozenset(f.name.value for f in item_fields(info)) & ALL_PRODUCT_FIELDS
    fp = Fingerprint("products", [a.name for a in adapters], product_filter)

    def stream(adapter: SourceAdapter) -> Stream[ProductRecord]:
        async def fetch(window: Window) -> Page[ProductRecord]:
            return await adapter.list_products(product_filter, window, fields, context.scope)

        return WindowStream(adapter.name, fetch)

    listing = await concatenated([stream(a) for a in adapters], args, fp, _reporter(info),
                                 need_total=wants(info, "totalCount"))
    return Connection.of(listing, context.cursors)  # type: ignore[no-any-return]


# -- nodes --------------------------------------------------------------------------------------


async def node(info: GraphInfo, id: str) -> GroupRecord | ProductRecord | None:
    key = decode_id(id)
    if key is None:
        return None
    return await info.context.loaders.node(key)


async def nodes(info: GraphInfo, ids: list[str]) -> list[Any]:
    if len(ids) > 100:
        raise BadUserInput(f"`ids` takes at most 100 ids, got {len(ids)}")
    keys = [decode_id(i) for i in ids]
    loaders = info.context.loaders
    if _streamed(info):  # each item its own awaitable: a part of its own when it is ready
        return [_node(info, loaders.load_node(key))
                if key is not None and key.source in loaders.adapters else None
                for key in keys]
    answers = await loaders.nodes_of(keys)
    return [_node_answer(info, answer) for answer in answers]


async def _node(info: GraphInfo, lookup: Awaitable[GroupRecord | ProductRecord | None]
                ) -> GroupRecord | ProductRecord | None:
    try:
        answer = await lookup
    except GatewayError as error:
        return _node_answer(info, error)
    return answer


def _node_answer(info: GraphInfo, answer: Any) -> GroupRecord | ProductRecord | None:
    """A looked-up node, or None where its source failed (reported beside the data)."""
    if isinstance(answer, GatewayError) and answer.source is not None:
        info.context.report(answer, list(info.path.as_list()))
        return None
    if isinstance(answer, BaseException):
        raise answer
    return answer  # type: ignore[no-any-return]


def _streamed(info: GraphInfo) -> bool:
    """Whether the field carries ``@stream`` (heeded or not: its items come one by one)."""
    return any(d.name.value == "stream" for d in raw_info(info).field_nodes[0].directives or ())
