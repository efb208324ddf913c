"""Per-request loaders over the source adapters: batched, de-duplicated, concurrent.

One :class:`RequestLoaders` per GraphQL request (no cross-user cache). Each loader groups its keys
by source and asks every source once, concurrently; a source's failure is the value of its keys
only (errors as values), so one bad source fails alone. Lookups by id (``nodes``) reach each source
as one batch of its groups and products (:meth:`~gateway.sources.base.SourceAdapter.lookup`), so
a source whose calls serve both plans them together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from gateway.ids import NodeKey, NodeType
from gateway.scope import RequestScope
from gateway.shared import gather
from gateway.sources.base import ProductKey, SourceAdapter
from gateway.sources.query import ALL_PRODUCT_FIELDS
from gateway.sources.records import GroupRecord, ProductRecord
from gateway.window import Page, Window

__all__ = ["GroupKey", "GroupProductsKey", "RequestLoaders"]

K = TypeVar("K")
V = TypeVar("V")
# (source, "id" | "external_id", value)
GroupKey = tuple[str, str, str]
# (source, group upstream id, search, offset, limit)
GroupProductsKey = tuple[str, str, str | None, int, int]


class RequestLoaders:
    """The loaders of one request, over the configured adapters and the request's scope."""

    def __init__(self, adapters: Mapping[str, SourceAdapter], scope: RequestScope) -> None:
        self.adapters = adapters
        batches = _Batches(adapters, scope)
        self.groups: DataLoader[GroupKey, GroupRecord | None] = DataLoader(batches.groups)
        self.group_products: DataLoader[GroupProductsKey, Page[ProductRecord]] = DataLoader(
            batches.group_products)
        self._batches = batches
        # One loader per source: a source's lookups end when its answer comes, not the
        # slowest source's (a streamed `nodes` sends each item when it is ready).
        self._nodes: dict[str, DataLoader[NodeKey, GroupRecord | ProductRecord | None]] = {}

    async def parent(self, group: GroupRecord) -> GroupRecord | None:
        if group.parent_id is not None:
            return await self.groups.load((group.source.id, "id", group.parent_id))
        if group.parent_external_id is not None:
            return await self.groups.load((group.source.id, "external_id",
                                           group.parent_external_id))
        return None

    async def node(self, key: NodeKey) -> GroupRecord | ProductRecord | None:
        """The record a global id names; None when its source or the item is unknown."""
        if key.source not in self.adapters:
            return None
        return await self.load_node(key)

    def load_node(self, key: NodeKey) -> Awaitable[GroupRecord | ProductRecord | None]:
        """The future of a key's record (its source's loader; the source is known)."""
        loader = self._nodes.get(key.source)
        if loader is None:
            loader = self._nodes[key.source] = DataLoader(self._batches.nodes)
        return loader.load(key)

    async def nodes_of(self, keys: Sequence[NodeKey | None]) -> list[Any]:
        """What each key names (None for no key, an unknown source or item), or the exception
        that stopped its lookup. The keys are known together, so they are looked up as one
        batch (each source asked once, all at once) past the loaders: a loader's future per
        key, a batch task per source and their gathering were a tenth of a warm query of
        thirty ids. A key also loaded elsewhere in the request makes no second upstream call
        (the request's calls are made once)."""
        known = [(i, key) for i, key in enumerate(keys)
                 if key is not None and key.source in self.adapters]
        found = await self._batches.nodes([key for _, key in known]) if known else []
        results: list[Any] = [None] * len(keys)
        for (i, _), answer in zip(known, found, strict=True):
            results[i] = answer
        return results


class _Batches:
    """The loaders' batch functions, apart from the loaders: a loader holding a bound method of
    the object that holds the loader is a reference cycle, and everything the request loaded
    (its records) would wait for the garbage collector instead of leaving with the request."""

    def __init__(self, adapters: Mapping[str, SourceAdapter], scope: RequestScope) -> None:
        self.adapters = adapters
        self.scope = scope

    async def groups(self, keys: Sequence[GroupKey]) -> list[Any]:
        async def fetch(adapter: SourceAdapter, field: str, values: list[str]) -> dict[str, Any]:
            if field == "id":
                return dict(await adapter.groups_by_ids(values, self.scope))
            return dict(await adapter.groups_by_external_ids(values, self.scope))

        return await _per_source(keys, lambda k: (k[0], k[1]), lambda k: k[2],
                                 lambda group, values: fetch(self.adapters[group[0]], group[1],
                                                             values))

    async def nodes(self, keys: Sequence[NodeKey]) -> list[Any]:
        """Every id looked up at once, one plan per source for its groups and products (a
        source may serve both with the same calls)."""
        wanted: dict[str, tuple[list[str], list[ProductKey]]] = defaultdict(lambda: ([], []))
        for key in keys:
            groups, products = wanted[key.source]
            if key.type is NodeType.PRODUCT_GROUP:
                groups.append(key.upstream_id)
            else:
                products.append((key.upstream_id, key.group_id))
        names = list(wanted)
        found = await gather(*(
            self.adapters[name].lookup(*wanted[name], ALL_PRODUCT_FIELDS, self.scope)
            for name in names), return_exceptions=True)
        by_source = dict(zip(names, found, strict=True))
        results: list[Any] = []
        for key in keys:
            lookup = by_source[key.source]
            part: Any = lookup if isinstance(lookup, BaseException) else (
                lookup.groups if key.type is NodeType.PRODUCT_GROUP else lookup.products)
            item = key.upstream_id if key.type is NodeType.PRODUCT_GROUP else (
                key.upstream_id, key.group_id)
            results.append(part if isinstance(part, BaseException) else part.get(item))
        return results

    async def group_products(self, keys: Sequence[GroupProductsKey]) -> list[Any]:
        results = await gather(
            *(self.adapters[source].group_products(group_id, search, Window(offset, limit),
                                                   self.scope)
              for source, group_id, search, offset, limit in keys),
            return_exceptions=True)
        return list(results)


async def _per_source(
    keys: Sequence[K],
    batch_of: Callable[[K], Any],
    item_of: Callable[[K], V],
    fetch: Callable[[Any, list[V]], Awaitable[dict[V, Any]]],
) -> list[Any]:
    """One concurrent fetch per batch (a source, or a source and a field); errors as values."""
    batches: dict[Any, list[V]] = defaultdict(list)
    for key in keys:
        batches[batch_of(key)].append(item_of(key))
    names = list(batches)
    answers = await gather(*(fetch(name, batches[name]) for name in names),
                           return_exceptions=True)
    by_batch = dict(zip(names, answers, strict=True))
    results: list[Any] = []
    for key in keys:
        answer = by_batch[batch_of(key)]
        results.append(answer if isinstance(answer, BaseException) else answer.get(item_of(key)))
    return results
