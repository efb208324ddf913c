"""The benchmark's references, served like the gateway (``uvicorn.run``, same settings).

    python -m bench.reference ceiling --answers FILE --port N
    python -m bench.reference stock --dataset FILE --port N

* ``ceiling``: a bare Starlette endpoint per scenario (``POST /<scenario>``) that reads the body
  and returns that scenario's answer, the gateway's exact bytes: what HTTP alone costs.
* ``stock``: stock Strawberry (its own ASGI app, no extensions) with plain types mirroring the
  gateway schema's shape for the scenarios and synchronous resolvers over the same records, held in
  memory (read once from a gateway: :func:`bench.scenarios.load_dataset`). The only change to the
  stock app: its JSON encoder keeps non-ASCII characters as UTF-8 (like the gateway's) instead of
  ``\\uXXXX`` escapes, so the answers are byte-identical (checked before any timing).
"""

from __future__ import annotations

import argparse
import json
from enum import Enum
from pathlib import Path
from typing import Any

import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from bench.scenarios import SOURCES

__all__ = ["ceiling_app", "stock_app"]

KEEP_ALIVE = 75  # the gateway's [server] keep_alive_seconds default


# -- ceiling ------------------------------------------------------------------------------------


def ceiling_app(answers: dict[str, bytes]) -> Starlette:
    """``POST /<scenario>`` answers the scenario's bytes."""

    def route(answer: bytes) -> Any:
        async def endpoint(request: Request) -> Response:
            await request.body()
            return Response(answer, media_type="application/json")

        return endpoint

    return Starlette(routes=[Route(f"/{name}", route(answer), methods=["POST"])
                             for name, answer in answers.items()])


# -- stock Strawberry ---------------------------------------------------------------------------


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class Source:
    id: strawberry.ID


@strawberry.type(name="ProductVariant")
class Variant:
    sku: str | None


@strawberry.type
class Product(Node):
    name: str | None
    sku: str | None
    variants: list[Variant]


@strawberry.type
class ProductConnection:
    total_count: int | None
    nodes: list[Product]


@strawberry.type
class ProductGroup(Node):
    name: str | None
    source: Source
    upstream_id: strawberry.Private[str]
    all_products: strawberry.Private[list[Product]]

    @strawberry.field
    def products(self, first: int | None = None) -> ProductConnection | None:
        return ProductConnection(total_count=len(self.all_products),
                                 nodes=self.all_products[:20 if first is None else first])


@strawberry.type
class ProductGroupConnection:
    total_count: int | None
    nodes: list[ProductGroup]


@strawberry.input
class ProductGroupFilter:
    sources: list[strawberry.ID] | None = None


@strawberry.enum
class ProductGroupOrderField(Enum):
    NAME = "NAME"


@strawberry.enum
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input
class ProductGroupOrder:
    field: ProductGroupOrderField
    direction: OrderDirection = OrderDirection.ASC


def _name_key(rank: dict[str, int]) -> Any:
    def key(group: ProductGroup) -> tuple[bool, str, int, str]:
        name = group.name.casefold() if group.name is not None else ""
        return (group.name is None, name, rank[group.source.id], group.upstream_id)

    return key


@strawberry.type
class Query:
    groups: strawberry.Private[list[ProductGroup]]
    by_id: strawberry.Private[dict[str, Product | ProductGroup]]

    @strawberry.field
    def product_groups(self, first: int | None = None, filter: ProductGroupFilter | None = None,
                       order_by: ProductGroupOrder | None = None) -> ProductGroupConnection:
        groups = self.groups
        if filter is not None and filter.sources is not None:
            wanted = set(filter.sources)
            groups = [g for g in groups if g.source.id in wanted]
        if order_by is not None:
            groups = sorted(groups, key=_name_key({s: i for i, s in enumerate(SOURCES)}),
                            reverse=order_by.direction is OrderDirection.DESC)
        return ProductGroupConnection(total_count=len(groups),
                                      nodes=groups[:20 if first is None else first])

    @strawberry.field
    def nodes(self, ids: list[strawberry.ID]) -> list[Node | None]:
        return [self.by_id.get(i) for i in ids]


def _product(row: dict[str, Any]) -> Product:
    return Product(id=row["id"], name=row["name"], sku=row["sku"],
                   variants=[Variant(sku=v["sku"]) for v in row["variants"]])


def stock_root(dataset: dict[str, Any]) -> Query:
    """The records of ``dataset`` (see :func:`bench.scenarios.load_dataset`) as Strawberry
    objects, built once."""
    sources = {name: Source(id=strawberry.ID(name)) for name in SOURCES}
    products = {group_id: [_product(p) for p in rows]
                for group_id, rows in dataset["products"].items()}
    groups = [ProductGroup(id=g["id"], name=g["name"], source=sources[g["source"]["id"]],
                           upstream_id=g["upstreamId"], all_products=products.get(g["id"], []))
              for g in dataset["groups"]]
    by_id: dict[str, Product | ProductGroup] = {g.id: g for g in groups}
    for group_products in products.values():
        by_id.update((p.id, p) for p in group_products)
    by_id.update((p["id"], _product(p)) for p in dataset["loose_products"])
    return Query(groups=groups, by_id=by_id)


class StockGraphQL(GraphQL[None, Query]):
    def __init__(self, root: Query) -> None:
        super().__init__(strawberry.Schema(query=Query, types=[Product, ProductGroup]),
                         graphql_ide=None)
        self.root = root

    async def get_root_value(self, request: Any) -> Query:
        return self.root

    def encode_json(self, data: object) -> bytes:
        # Stock Strawberry's own encoder, keeping UTF-8 as the gateway does (byte-identical).
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def stock_app(dataset: dict[str, Any]) -> StockGraphQL:
    return StockGraphQL(stock_root(dataset))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reference", description=__doc__)
    parser.add_argument("kind", choices=("ceiling", "stock"))
    parser.add_argument("--answers", help="ceiling: JSON {scenario: answer text}")
    parser.add_argument("--dataset", help="stock: the JSON of bench.scenarios.load_dataset")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    app: Any
    if args.kind == "ceiling":
        answers = json.loads(Path(args.answers).read_text())
        app = ceiling_app({name: text.encode() for name, text in answers.items()})
    else:
        app = stock_app(json.loads(Path(args.dataset).read_text()))
    # As `python -m gateway serve` runs the gateway.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level=args.log_level,
                timeout_keep_alive=KEEP_ALIVE)


if __name__ == "__main__":
    main()
