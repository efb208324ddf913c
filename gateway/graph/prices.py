"""Prices: what each configured source's reads cost (:class:`SourcePrice`, from its adapter's
declared :class:`~gateway.sources.base.ReadCost`), and the price of an operation under
construction (:class:`Cost`) and as a whole (:class:`Price`): upstream requests, group tables,
lookups by id, and the values of the answer. Read by the walk that applies them
(:mod:`gateway.graph.pricing`) and the rule (:mod:`gateway.graph.cost`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from graphql import (
    DirectiveLocation,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
)
from strawberry.federation.schema_directives import ListSize

from gateway.graph.connection import LIST_SIZE
from gateway.graph.limits import SATURATED
from gateway.sources.base import SourceAdapter, read_cost_of
from gateway.sources.records import Capability

__all__ = ["ASSUMED_SIZE", "NOTHING", "SATURATED_PRICE", "SIZED_FIELDS", "SLICING_ARGUMENTS",
           "Cost", "Largest", "Price", "Prices", "SourcePrice", "pages"]

# The published @listSize: a connection is sized by `first`/`last`, its items are under
# `nodes` and `edges`, and a size not known before the request (a variable) is its maximum.
# (tests/graph/test_cost.py holds the two to each other.)
SLICING_ARGUMENTS = ("first", "last")
SIZED_FIELDS = ("edges", "nodes")
ASSUMED_SIZE = LIST_SIZE.assumed_size or 100
NODES_ASSUMED = 100  # `nodes(ids:)` takes at most 100 ids (its own @listSize)
# A group's whole product list, in pages, before any group table was read.
ASSUMED_GROUP_PAGES = 2
# The arguments of ProductGroupFilter (what a source may push down: its ReadCost says which).
GROUP_FILTER_ARGUMENTS = frozenset({"search", "status", "storeId", "code", "externalId"})


# -- what each source charges -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourcePrice:
    """What one configured source's requests cost: its adapter's declared
    :class:`~gateway.sources.base.ReadCost`, its capabilities, and what it learned of its
    table."""

    name: str
    groups: bool  # lists product groups
    products: bool  # lists products outside groups
    group_products: bool  # its groups have products, paged per group
    list_page: int | None  # most items per list request (None: any window in one request)
    table_pages: int  # requests to read its whole group table
    pushable: frozenset[str]  # group filter arguments (GraphQL names) the upstream applies
    parents: bool  # its groups name a parent
    by_id_limit: int  # groups fetched one by one up to this many ids; more read the table
    product_by_id: bool  # a product is one call by id (Comestri)
    group_pages: int  # pages of a group's whole product list (Axim product lookups)
    products_page: int  # most products of a group one request carries (0: none of its own)
    pass_through: bool = False  # clients may send their own credential (a subscriber's view)
    # A group by id comes with its first products: looked up with products of it, it costs
    # nothing more (ReadCost.by_id_carries_products).
    by_id_carries_products: bool = False

    @classmethod
    def of(cls, adapter: SourceAdapter) -> SourcePrice:
        declared = read_cost_of(adapter)
        capabilities = adapter.capabilities
        size = adapter.table_size if adapter.table_size is not None \
            else adapter.config.scan_limit
        page = adapter.table_page_size
        table_pages = 1 if page is None else max(1, math.ceil(size / page))
        group_products = Capability.GROUP_PRODUCTS in capabilities
        products_page = declared.products_page if group_products else 0
        largest = adapter.largest_group
        group_pages = 0 if not products_page else ASSUMED_GROUP_PAGES if not largest \
            else max(1, math.ceil(largest / products_page))
        return cls(
            name=adapter.name,
            groups=Capability.PRODUCT_GROUPS in capabilities,
            products=Capability.PRODUCTS in capabilities,
            group_products=group_products,
            list_page=declared.list_page,
            table_pages=table_pages,
            pushable=declared.pushed_filters & GROUP_FILTER_ARGUMENTS,
            parents=declared.parents,
            by_id_limit=declared.by_id_limit if Capability.GROUP_BY_ID in capabilities else 0,
            product_by_id=Capability.PRODUCT_BY_ID in capabilities,
            group_pages=group_pages,
            products_page=products_page,
            pass_through=adapter.config.pass_through_header is not None,
            by_id_carries_products=declared.by_id_carries_products,
        )


Prices = tuple[SourcePrice, ...]


def pages(size: int, page: int | None, *, mid_page: bool) -> int:
    """Upstream requests for a window of ``size`` items (``mid_page``: it may start anywhere)."""
    if size <= 0:
        return 0
    if page is None:
        return 1
    return math.ceil(size / page) + (1 if mid_page else 0)


# -- a price under construction -----------------------------------------------------------------


def _sat(value: int) -> int:
    return min(value, SATURATED)


Largest = tuple[tuple[str, int], ...]  # response keys down the heaviest part, with its values


def _heavier(one: Largest, other: Largest) -> Largest:
    return other if other and (not one or other[0][1] > one[0][1]) else one


@dataclass(frozen=True, slots=True)
class Cost:
    """Requests (scaled by the lists around them), group tables (read once per request) and
    lookups by id of sources that fetch a few ids one by one (``(source, ids, sites)``); and the
    answer: ``values`` it may hold (every field of every object, every item of every list),
    ``largest`` the response keys down to its heaviest part, each with the values under it."""

    requests: int = 0
    tables: frozenset[str] = frozenset()
    by_id: tuple[tuple[str, int, int], ...] = ()
    values: int = 0
    largest: Largest = ()

    def __add__(self, other: Cost) -> Cost:
        merged: dict[str, tuple[int, int]] = {}
        for source, ids, sites in (*self.by_id, *other.by_id):
            known = merged.get(source, (0, 0))
            merged[source] = (_sat(known[0] + ids), known[1] + sites)
        return Cost(_sat(self.requests + other.requests), self.tables | other.tables,
                    tuple((s, i, n) for s, (i, n) in sorted(merged.items())),
                    _sat(self.values + other.values), _heavier(self.largest, other.largest))

    def times(self, count: int) -> Cost:
        """This cost once per item of a list of ``count`` (tables are still read once; each
        item is a value of the answer)."""
        return Cost(_sat(self.requests * count), self.tables,
                    tuple((s, _sat(ids * count), sites) for s, ids, sites in self.by_id),
                    *_listed(self, count))

    def listed(self, count: int) -> Cost:
        """The answer of a list of ``count`` records: its values once per item, its requests
        once (what records hold costs nothing more)."""
        values, largest = _listed(self, count)
        return replace(self, values=values, largest=largest)

    def named(self, key: str) -> Cost:
        """This cost as the value of the field at response key ``key`` (one value more)."""
        values = _sat(self.values + 1)
        return replace(self, values=values, largest=((key, values), *self.largest))

    def total(self, prices: Mapping[str, SourcePrice]) -> int:
        tables = set(self.tables)
        total = self.requests
        for source, ids, sites in self.by_id:
            limit = prices[source].by_id_limit
            if ids <= limit:
                total += ids
            else:  # one batch per site: the large one reads the table, the others (a few
                # ids each) may go one by one
                total += min(ids, limit * (sites - 1))
                tables.add(source)
        total += sum(prices[s].table_pages for s in tables)
        return _sat(total)


def _listed(cost: Cost, count: int) -> tuple[int, Largest]:
    """The values of ``count`` items of ``cost`` each (an item is a value too)."""
    return (_sat((cost.values + 1) * count),
            tuple((key, _sat(values * count)) for key, values in cost.largest))


NOTHING = Cost()


# -- an operation's price --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Price:
    """What one operation may cost: upstream ``requests``, the ``values`` of its answer and the
    response keys down to the answer's ``largest`` part (with the values under each); ``guessed``
    when a page size read from a variable was priced at the largest page."""

    requests: int
    values: int
    largest: Largest = ()
    guessed: bool = False

    def part(self) -> str:
        """The largest part as a path of response keys: down from the root as long as one
        field holds at least half of the values above it (where the answer multiplies)."""
        keys: list[str] = []
        above = self.values
        for key, values in self.largest:
            if keys and values * 2 < above:
                break
            keys.append(key)
            above = values
        return ".".join(keys)


SATURATED_PRICE = Price(SATURATED, SATURATED)


# -- sizes of lists ---------------------------------------------------------------------------


@functools.cache
def introspection_sizes(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    """The longest list of each introspection field this schema can answer (its types, a
    type's fields, a field's arguments…): what an introspection query's lists hold at most."""
    types = list(schema.type_map.values())
    fields = [t.fields for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType
                                                          | GraphQLInputObjectType)]
    arguments = [len(f.args) for t in types if isinstance(t, GraphQLObjectType
                                                          | GraphQLInterfaceType)
                 for f in t.fields.values()] + [len(d.args) for d in schema.directives]
    abstract = [t for t in types if isinstance(t, GraphQLInterfaceType | GraphQLUnionType)]
    return {
        ("__Schema", "types"): len(types),
        ("__Schema", "directives"): len(schema.directives),
        ("__Type", "fields"): max(map(len, fields), default=0),
        ("__Type", "inputFields"): max(map(len, fields), default=0),
        ("__Type", "interfaces"): max((len(t.interfaces) for t in types
                                       if isinstance(t, GraphQLObjectType
                                                     | GraphQLInterfaceType)), default=0),
        ("__Type", "possibleTypes"): max((len(schema.get_possible_types(t)) for t in abstract),
                                         default=0),
        ("__Type", "enumValues"): max((len(t.values) for t in types
                                       if isinstance(t, GraphQLEnumType)), default=0),
        ("__Field", "args"): max(arguments, default=0),
        ("__Directive", "args"): max(arguments, default=0),
        ("__Directive", "locations"): len(DirectiveLocation),
    }


def declared_size(definition: GraphQLField) -> int | None:
    """The ``assumedSize`` of the ``@listSize`` a list field declares (strawberry keeps the
    field's directives on its definition)."""
    declared = (definition.extensions or {}).get("strawberry-definition")
    for directive in getattr(declared, "directives", ()):
        if isinstance(directive, ListSize) and directive.assumed_size is not None:
            return int(directive.assumed_size)
    return None


def list_requests(page: int | None, size: int, forward: bool, backward: bool,
                   cursor: bool) -> int:
    requests = pages(size, page, mid_page=cursor) if forward else 0
    if backward:  # each source's total first, then a window ending anywhere
        requests = max(requests, 1 + pages(size, page, mid_page=True))
    return requests
