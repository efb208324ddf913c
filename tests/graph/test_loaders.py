"""The per-request loaders over in-memory adapters: one fetch per source and batch, answers in
the order asked, a source's failure as the value of its keys only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

import pytest

from gateway.config import SourceConfig, SourceKind
from gateway.errors import UpstreamUnavailable
from gateway.graph.loaders import RequestLoaders
from gateway.ids import NodeKey, NodeType
from gateway.scope import RequestScope
from gateway.sources.base import ProductKey, SourceAdapter
from gateway.sources.query import ProductFields
from gateway.sources.records import Capability, GroupRecord, ProductRecord
from gateway.upstream.client import UpstreamClient
from gateway.window import Page, Window


class MemoryAdapter(SourceAdapter):
    """A source whose groups and products live in memory; it counts what it is asked."""

    kind: ClassVar[SourceKind] = SourceKind.JOPTIC
    capabilities: ClassVar[tuple[Capability, ...]] = (Capability.PRODUCT_GROUPS,)

    def __init__(self, name: str, group_ids: Sequence[str], *, down: bool = False) -> None:
        config = SourceConfig(name=name, kind=self.kind, base_url="http://memory.test",
                              token="t")
        super().__init__(config, UpstreamClient(config, auth_headers={}))
        self.groups = {i: GroupRecord(source=self.info, upstream_id=i, external_id=f"x{i}",
                                      parent_id=None if i == "1" else "1") for i in group_ids}
        self.down = down
        self.calls: list[tuple[str, list[str]]] = []

    def _ask(self, what: str, values: Sequence[str]) -> None:
        self.calls.append((what, list(values)))
        if self.down:
            raise UpstreamUnavailable(f"source '{self.name}' failed", source=self.name)

    async def groups_by_ids(self, ids: Sequence[str], scope: RequestScope
                            ) -> dict[str, GroupRecord]:
        self._ask("ids", ids)
        return {i: self.groups[i] for i in ids if i in self.groups}

    async def groups_by_external_ids(self, ids: Sequence[str], scope: RequestScope
                                     ) -> dict[str, GroupRecord]:
        self._ask("external_ids", ids)
        return {g.external_id: g for g in self.groups.values()
                if g.external_id is not None and g.external_id in ids}

    async def products_by_keys(self, keys: Sequence[ProductKey], fields: ProductFields,
                               scope: RequestScope) -> dict[ProductKey, ProductRecord]:
        self._ask("products", [k for k, _ in keys])
        return {(k, g): ProductRecord(source=self.info, upstream_id=k, group_id=g)
                for k, g in keys if k.startswith("p")}

    async def group_products(self, group_id: str, search: str | None, window: Window,
                             scope: RequestScope) -> Page[ProductRecord]:
        self._ask("group_products", [group_id])
        return Page([ProductRecord(source=self.info, upstream_id=f"{group_id}-{i}")
                     for i in range(window.offset, window.end)], 100)


@pytest.fixture
async def adapters() -> AsyncIterator[dict[str, MemoryAdapter]]:
    made = {"one": MemoryAdapter("one", ["1", "2", "3"]),
            "two": MemoryAdapter("two", ["1", "9"]),
            "down": MemoryAdapter("down", ["1"], down=True)}
    yield made
    for adapter in made.values():
        await adapter.client.aclose()


def loaders_over(adapters: dict[str, MemoryAdapter]) -> RequestLoaders:
    return RequestLoaders(adapters, RequestScope())


async def test_group_lookups_batch_per_source_and_keep_order(
    adapters: dict[str, MemoryAdapter],
) -> None:
    loaders = loaders_over(adapters)
    keys = [("one", "id", "3"), ("two", "id", "9"), ("one", "id", "1"), ("one", "id", "404"),
            ("one", "external_id", "x2")]
    found = await asyncio.gather(*(loaders.groups.load(k) for k in keys))

    assert [g.upstream_id if g else None for g in found] == ["3", "9", "1", None, "2"]
    assert [g.source.id if g else None for g in found] == ["one", "two", "one", None, "one"]
    assert adapters["one"].calls == [("ids", ["3", "1", "404"]), ("external_ids", ["x2"])]
    assert adapters["two"].calls == [("ids", ["9"])]


async def test_a_failing_source_fails_only_its_own_keys(
    adapters: dict[str, MemoryAdapter],
) -> None:
    loaders = loaders_over(adapters)
    found = await asyncio.gather(loaders.groups.load(("down", "id", "1")),
                                 loaders.groups.load(("one", "id", "2")),
                                 return_exceptions=True)

    assert isinstance(found[0], UpstreamUnavailable) and found[0].source == "down"
    assert isinstance(found[1], GroupRecord) and found[1].upstream_id == "2"


async def test_parent_by_id_and_root_without_one(adapters: dict[str, MemoryAdapter]) -> None:
    loaders = loaders_over(adapters)
    child, root = adapters["one"].groups["2"], adapters["one"].groups["1"]

    assert await loaders.parent(child) is root
    assert await loaders.parent(root) is None
    external = GroupRecord(source=child.source, upstream_id="7", parent_external_id="x3")
    assert await loaders.parent(external) is adapters["one"].groups["3"]


async def test_node_of_an_unknown_source_asks_nobody(adapters: dict[str, MemoryAdapter]) -> None:
    loaders = loaders_over(adapters)

    assert await loaders.node(NodeKey(NodeType.PRODUCT_GROUP, "gone", "1")) is None
    assert all(not adapter.calls for adapter in adapters.values())


async def test_products_batch_per_source(adapters: dict[str, MemoryAdapter]) -> None:
    loaders = loaders_over(adapters)
    found = await asyncio.gather(
        loaders.node(NodeKey(NodeType.PRODUCT, "one", "p1", "g")),
        loaders.node(NodeKey(NodeType.PRODUCT, "one", "missing", None)),
        loaders.node(NodeKey(NodeType.PRODUCT, "two", "p2", None)))

    assert [p.upstream_id if p else None for p in found] == ["p1", None, "p2"]
    assert adapters["one"].calls == [("products", ["p1", "missing"])]


async def test_group_products_are_loaded_once_per_key(adapters: dict[str, MemoryAdapter]) -> None:
    loaders = loaders_over(adapters)
    key = ("one", "1", None, 0, 2)
    first, again, other = await asyncio.gather(
        loaders.group_products.load(key), loaders.group_products.load(key),
        loaders.group_products.load(("two", "9", "x", 2, 1)))

    assert first is again
    assert [p.upstream_id for p in first.items] == ["1-0", "1-1"]
    assert [p.upstream_id for p in other.items] == ["9-2"]
    assert adapters["one"].calls == [("group_products", ["1"])]
