"""One generic Relay connection for every list: ``ProductGroupConnection``, ``ProductConnection``.

A connection is served from a :class:`~gateway.graph.listing.Listing`: ``nodes`` and
``totalCount`` are plain attributes (no resolver call each), edges and cursors are built only
when a query selects them.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import strawberry
from strawberry.federation.schema_directives import ListSize
from strawberry.relay import PageInfo

from gateway.graph.cursors import MAX_PAGE_SIZE, CursorCodec
from gateway.graph.listing import Listing

__all__ = ["LIST_SIZE", "Connection", "Edge"]

T = TypeVar("T")

# Demand control (a router's cost analysis): each connection's size comes from first/last,
# at most MAX_PAGE_SIZE; neither argument is required (the default page is 20).
LIST_SIZE = ListSize(assumed_size=MAX_PAGE_SIZE, slicing_arguments=["first", "last"],
                     sized_fields=["edges", "nodes"], require_one_slicing_argument=False)


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of a list; edges and cursors are built only when selected.")
class Connection(Generic[T]):
    listing: strawberry.Private[Listing[Any]]
    cursors: strawberry.Private[CursorCodec]
    # Plain attributes where cheap (no resolver call per field), resolvers where work is saved.
    nodes: list[T]
    total_count: int | None = strawberry.field(
        description="Items in the whole list; null when a source failed and it is unknown.")

    @classmethod
    def of(cls, listing: Listing[Any], cursors: CursorCodec) -> Any:
        return cls(listing=listing, cursors=cursors, nodes=listing.items,
                   total_count=listing.total)

    @strawberry.field
    def edges(self) -> list[Edge[T]]:
        encode = self.cursors.encode
        return [Edge(cursor=encode(cursor), node=item) for item, cursor in self.listing.edges]

    @strawberry.field
    def page_info(self) -> PageInfo:
        edges = self.listing.edges
        return PageInfo(
            has_next_page=self.listing.has_next, has_previous_page=self.listing.has_previous,
            start_cursor=self.cursors.encode(edges[0][1]) if edges else None,
            end_cursor=self.cursors.encode(edges[-1][1]) if edges else None)


