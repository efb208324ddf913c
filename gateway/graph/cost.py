"""Query cost: the upstream requests an operation may make, known before it runs.

A graphql-core validation rule (:class:`CostLimit` adds it to the schema's validation, which the
:class:`~gateway.graph.documents.DocumentCache` runs once per document) prices each field that
costs upstream work from what the resolvers really do with each configured source, and refuses
an operation whose price is over ``[limits] max_cost`` with ``QUERY_TOO_COMPLEX``
(``extensions: {code, cost, maxCost}``), before any resolver runs.

What costs what (each source's :class:`SourcePrice`, read from its adapter):

* a page of a list (``productGroups``, ``products``, ``ProductGroup.products``): per source
  asked, the fewest upstream pages covering the window (``ceil(size / page maximum)``, one more
  when a cursor may start it mid-page; CareCloud's offset/count is one request for any window).
  ``last`` first asks each source's total (one request more); ``totalCount`` after a cursor
  may too;
* a filter or an order the upstream cannot apply: the source's whole group table, read once
  per request (``ceil(groups / table page)`` requests, the size learned from the last read,
  ``scan_limit`` before any);
* lookups by id (``node``, ``nodes``, ``productGroup``, ``product``, ``_entities``) and
  ``parent``: batched per source and level. CareCloud and Joptic read their group table (once
  per request); Axim fetches up to three groups one by one, more from its table; an Axim
  product reads its group's whole product list (pages of 50); a Comestri product is one call;
* Axim's look-ahead: groups whose items all ask the same first product page (at most 50) get
  their products in the group list's own call, for nothing more;
* a subscription's event (``productGroupChanged``, ``productChanged``): its node comes with it,
  so only what is selected on the node costs, priced as on a group of any source the filter
  names, per event (each event is resolved as a request of its own).

A field's price is multiplied by the sizes of the connections it sits in (``first``/``last``,
or the default page size; a variable counts as the largest page, 100, whatever its default:
the client may send any value), summed over aliases and fragments (expanded; ``@skip`` and
``@include`` are not evaluated, so the price is an upper bound). The sizes follow the
``@listSize`` the schema publishes (:data:`~gateway.graph.connection.LIST_SIZE`).
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from graphql import (
    ASTValidationRule,
    DirectiveLocation,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    StringValueNode,
    TypeMetaFieldDef,
    ValidationContext,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_list_type,
    print_ast,
    value_from_ast_untyped,
)
from graphql.language import VisitorAction
from graphql.language.visitor import SKIP
from strawberry.extensions import SchemaExtension
from strawberry.federation.schema_directives import ListSize

from gateway.errors import ErrorCode
from gateway.graph.connection import LIST_SIZE
from gateway.graph.cursors import DEFAULT_PAGE_SIZE
from gateway.graph.folding import NestedPage, Unknown, nested_page
from gateway.graph.limits import SATURATED
from gateway.graph.walk import collect_fields, selected
from gateway.ids import NodeKey, NodeType, decode_id
from gateway.sources.base import SourceAdapter, read_cost_of
from gateway.sources.records import Capability

__all__ = ["Cost", "CostLimit", "CostModel", "Price", "Prices", "SourcePrice"]

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


# -- the walk -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scope:
    """What the objects of a selection are: the sources their groups may come from, and the
    sources whose group products the list's own call already carries (Axim's look-ahead)."""

    groups: frozenset[str] = frozenset()
    folded: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Arg:
    """An argument as far as it is known before the request: absent, a literal, or unknown."""

    node: ValueNode | None

    @property
    def given(self) -> bool:
        """The argument may be set (a literal other than null, or a variable)."""
        return self.node is not None and not isinstance(self.node, NullValueNode)

    @property
    def known(self) -> bool:
        return not _has_variable(self.node)

    def int_or(self, absent: int, unknown: int) -> int:
        node = self.node
        if node is None or isinstance(node, NullValueNode):
            return absent
        if isinstance(node, IntValueNode):
            return int(node.value)
        return unknown


def _has_variable(node: Any) -> bool:
    if isinstance(node, VariableNode):
        return True
    if isinstance(node, ListValueNode):
        return any(_has_variable(v) for v in node.values)
    if isinstance(node, ObjectValueNode):
        return any(_has_variable(f.value) for f in node.fields)
    return False


def _args(node: FieldNode) -> dict[str, _Arg]:
    return {a.name.value: _Arg(a.value) for a in node.arguments or ()}


def _value(arg: _Arg) -> Any:
    """An argument's value as the resolver will see it, or :class:`Unknown` (a variable)."""
    if arg.node is None or not arg.known:
        return Unknown(print_ast(arg.node)) if arg.node is not None else None
    return value_from_ast_untyped(arg.node)


def _arg(args: Mapping[str, _Arg], name: str) -> _Arg:
    return args.get(name, _Arg(None))


def _object_fields(arg: _Arg) -> dict[str, _Arg] | None:
    """The fields of an input object literal; None when the object is a variable."""
    if isinstance(arg.node, ObjectValueNode):
        return {f.name.value: _Arg(f.value) for f in arg.node.fields}
    return None if arg.given else {}


def _strings(arg: _Arg) -> list[str] | None:
    """A literal list of strings (ids, source names); None when any of it is unknown."""
    node = arg.node
    if isinstance(node, StringValueNode):
        return [node.value]
    if isinstance(node, ListValueNode) and all(isinstance(v, StringValueNode)
                                               for v in node.values):
        return [v.value for v in node.values if isinstance(v, StringValueNode)]
    return None


Sets = tuple[SelectionSetNode, ...]  # the selection sets of fields merged under one key


@dataclass
class _Pricer:
    """Walks an operation as graphql-core executes it: per object type, the fields of a
    selection (through fragments whose type condition applies, each once, as the spec's
    CollectFields) merged by response key, each key priced once with the merged selections of
    its fields.

    ``sizes``: the request's values of variables (known only per request); a ``first`` or
    ``last`` read from a variable without one is the largest page, and ``guessed`` says so."""

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    prices: Prices
    sizes: Mapping[str, Any] | None = None
    variable_definitions: tuple[VariableDefinitionNode, ...] = ()
    by_name: dict[str, SourcePrice] = field(init=False)
    memo: dict[tuple[tuple[int, ...], str, _Scope], Cost] = field(default_factory=dict)
    guessed: bool = False

    def __post_init__(self) -> None:
        self.by_name = {p.name: p for p in self.prices}

    def operation(self, operation: OperationDefinitionNode) -> Cost:
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return NOTHING
        return self.selections((operation.selection_set,), root, _Scope())

    def args(self, node: FieldNode) -> dict[str, _Arg]:
        """The field's arguments; a page size read from a variable is the request's value."""
        args = _args(node)
        for name in SLICING_ARGUMENTS:
            value = args.get(name)
            if value is not None and isinstance(value.node, VariableNode):
                args[name] = self._sized(value.node)
        return args

    def _sized(self, variable: VariableNode) -> _Arg:
        name = variable.name.value
        if self.sizes is not None and name in self.sizes:
            sent = self.sizes[name]
            if sent is None:
                return _Arg(NullValueNode())
            if type(sent) is int and 0 <= sent <= ASSUMED_SIZE:
                return _Arg(IntValueNode(value=str(sent)))
        elif self.sizes is not None:  # not sent: the variable's default, else no argument
            default = self._default(name)
            if default is None or isinstance(default, IntValueNode | NullValueNode):
                return _Arg(default)
        self.guessed = True
        return _Arg(variable)

    def _default(self, name: str) -> ValueNode | None:
        for definition in self.variable_definitions:
            if definition.variable.name.value == name:
                return definition.default_value
        return None

    # selections -------------------------------------------------------------------------------

    def selections(self, sets: Sets, parent: GraphQLNamedType | None, scope: _Scope) -> Cost:
        """The price of ``sets`` selected on one object of type ``parent``. An abstract type:
        each possible type's requests, summed (any may come), and the largest answer of one."""
        if not sets or parent is None:
            return NOTHING
        key = (tuple(id(s) for s in sets), parent.name, scope)
        known = self.memo.get(key)
        if known is not None:
            return known
        self.memo[key] = NOTHING  # a cycle through fragments ends here; validation reports it
        cost = answer = NOTHING
        for object_type in self._object_types(parent):
            one = NOTHING
            for response_key, nodes in self._collect(sets, object_type).items():
                one += self.field(nodes, object_type, scope).named(response_key)
            cost += one
            if one.values > answer.values:
                answer = one
        cost = replace(cost, values=answer.values, largest=answer.largest)
        self.memo[key] = cost
        return cost

    def _object_types(self, parent: GraphQLNamedType) -> list[GraphQLObjectType]:
        if isinstance(parent, GraphQLObjectType):
            return [parent]
        if isinstance(parent, GraphQLInterfaceType | GraphQLUnionType):
            return list(self.schema.get_possible_types(parent))
        return []

    def _applies(self, condition: str | None, object_type: GraphQLObjectType) -> bool:
        if condition is None or condition == object_type.name:
            return True
        abstract = self.schema.get_type(condition)
        return isinstance(abstract, GraphQLInterfaceType | GraphQLUnionType) and \
            self.schema.is_sub_type(abstract, object_type)

    def _collect(self, sets: Sets, object_type: GraphQLObjectType) -> dict[str, list[FieldNode]]:
        """Fields by response key for an ``object_type`` (the one walk; both branches of a
        ``@skip``/``@include`` are priced: the variables are not known yet)."""
        return collect_fields(sets, self.fragments, applies=lambda condition: self._applies(
            condition.name.value, object_type))

    def field(self, nodes: list[FieldNode], parent: GraphQLObjectType, scope: _Scope) -> Cost:
        node = nodes[0]  # merged fields have the same name and arguments (validation)
        name = node.name.value
        definition = self._definition(parent, name)
        if definition is None:
            return NOTHING  # __typename, or a field validation reports
        target = get_named_type(definition.type)
        sets = tuple(n.selection_set for n in nodes if n.selection_set is not None)
        args = self.args(node)
        special = (parent.name, name)
        if special in (("Query", "productGroups"), ("Query", "products")):
            return self.root_list(args, sets, target, name == "productGroups")
        if special in (("Query", "node"), ("Query", "productGroup"), ("Query", "product")):
            return self.lookup(sets, target, [_arg(args, "id")], 1)
        if special == ("Query", "nodes"):
            return self.lookup_list(sets, target, _arg(args, "ids"))
        if special == ("Query", "_entities"):
            return self.lookup_list(sets, target, _arg(args, "representations"))
        if special in (("Subscription", "productGroupChanged"),
                       ("Subscription", "productChanged")):
            return self.change(args, sets, target, name == "productGroupChanged")
        if special == ("ProductGroup", "parent"):
            return self.parent(sets, target, scope)
        if special == ("ProductGroup", "products"):
            return self.group_products(args, sets, target, scope)
        # A plain field: its own selections, once per item (lists of records cost nothing).
        cost = self.selections(sets, target, _Scope(scope.groups))
        if is_list_type(get_nullable_type(definition.type)):
            cost = cost.listed(self._list_size(parent, name, definition))
        return cost

    def _definition(self, parent: GraphQLObjectType, name: str) -> GraphQLField | None:
        if name in ("__schema", "__type") and parent is self.schema.query_type:
            meta: GraphQLField = SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef
            return meta
        definition: GraphQLField | None = parent.fields.get(name)
        return definition

    def _list_size(self, parent: GraphQLObjectType, name: str, definition: GraphQLField) -> int:
        """Items of a list that is not a connection: the ``@listSize`` it declares, the number
        of sources, or (introspection) the longest such list this schema has."""
        if (parent.name, name) == ("Query", "sources"):
            return len(self.prices)
        declared = _declared_size(definition)
        if declared is not None:
            return declared
        return _introspection_sizes(self.schema).get((parent.name, name), ASSUMED_SIZE)

    # connections ------------------------------------------------------------------------------

    def connection(self, sets: Sets, connection: GraphQLNamedType, size: int, scope: _Scope
                   ) -> tuple[Cost, bool]:
        """The connection's cost (``size`` items under ``nodes`` and ``edges``) and whether
        ``totalCount`` is selected."""
        cost = NOTHING
        total_count = False
        for object_type in self._object_types(connection):
            for key, nodes in self._collect(sets, object_type).items():
                name = nodes[0].name.value
                target = self._type_of(object_type, nodes[0])
                inner = tuple(n.selection_set for n in nodes if n.selection_set is not None)
                if name == "totalCount":
                    total_count = True
                    part = NOTHING
                elif name == "nodes":
                    part = self.selections(inner, target, scope).times(size)
                elif name == "edges" and isinstance(target, GraphQLObjectType):
                    part = self._edge(inner, target, scope).times(size)
                else:  # pageInfo, __typename: no upstream work
                    part = self.selections(inner, target, _Scope())
                cost += part.named(key)
        return cost, total_count

    def _edge(self, sets: Sets, edge: GraphQLObjectType, scope: _Scope) -> Cost:
        cost = NOTHING
        for key, nodes in self._collect(sets, edge).items():
            part = NOTHING
            if nodes[0].name.value == "node":
                part = self.selections(tuple(n.selection_set for n in nodes if n.selection_set),
                                       self._type_of(edge, nodes[0]), scope)
            cost += part.named(key)
        return cost

    def _type_of(self, parent: GraphQLObjectType, node: FieldNode) -> GraphQLNamedType | None:
        definition = parent.fields.get(node.name.value)
        return None if definition is None else get_named_type(definition.type)

    def root_list(self, args: Mapping[str, _Arg], sets: Sets, connection: GraphQLNamedType,
                  groups: bool) -> Cost:
        size, forward, backward, cursor = _window(args)
        filter_fields = _object_fields(_arg(args, "filter"))
        capable = [p for p in self.prices if (p.groups if groups else p.products)]
        sources = _named_sources(capable, filter_fields)
        order = _arg(args, "orderBy").given if groups else False
        cost = NOTHING
        nested = self._nested(sets) if groups else None
        folded: set[str] = set()
        for price in sources:
            table = groups and (order or _unpushed(price, filter_fields))
            windowed = not (groups and _surely_table(price, filter_fields, args))
            if table:
                cost += Cost(tables=frozenset({price.name}))
            if windowed:
                cost += Cost(_list_requests(price.list_page, size, forward, backward, cursor))
                if nested is not None and not table and nested.size <= price.products_page:
                    folded.add(price.name)  # its list's own call carries the groups' products
        scope = _Scope(frozenset(p.name for p in sources if groups), frozenset(folded))
        items, total_count = self.connection(sets, connection, size, scope)
        if total_count and cursor:  # a source past its end is asked its total
            cost += Cost(sum(1 for p in sources if not (groups and _surely_table(
                p, filter_fields, args))))
        return cost + items

    def _nested(self, sets: Sets) -> NestedPage | None:
        """The first page every group of the list asks its products for, which a source whose
        declared ``products_page`` holds it carries in the group list's own call: the fold
        rule (:mod:`gateway.graph.folding`), asked with what is known before the request."""
        items: list[SelectionSetNode | None] = []
        for child in selected(sets, self.fragments):
            if child.name.value == "nodes":
                items.append(child.selection_set)
            elif child.name.value == "edges":
                items += [g.selection_set for g in selected([child.selection_set], self.fragments)
                          if g.name.value == "node"]
        calls = [{name: _value(arg) for name, arg in self.args(item).items()}
                 for item in selected(items, self.fragments) if item.name.value == "products"]
        return nested_page(calls)

    def group_products(self, args: Mapping[str, _Arg], sets: Sets,
                       connection: GraphQLNamedType, scope: _Scope) -> Cost:
        size, forward, backward, cursor = _window(args)
        paying = [self.by_name[s] for s in scope.groups
                  if self.by_name[s].group_products and s not in scope.folded]
        cost = NOTHING
        if paying:
            cost = Cost(max(_list_requests(p.list_page, size, forward, backward, cursor)
                            for p in paying))
        items, total_count = self.connection(sets, connection, size, _Scope())
        if total_count and cursor and paying:
            cost += Cost(1)
        return cost + items

    # lookups ----------------------------------------------------------------------------------

    def lookup_list(self, sets: Sets, target: GraphQLNamedType, ids: _Arg) -> Cost:
        if isinstance(ids.node, ListValueNode):
            return self.lookup(sets, target, [_Arg(v) for v in ids.node.values],
                               len(ids.node.values))
        return self.lookup(sets, target, [], NODES_ASSUMED, unknown=NODES_ASSUMED)

    def lookup(self, sets: Sets, target: GraphQLNamedType, ids: list[_Arg], count: int,
               *, unknown: int = 0) -> Cost:
        """Objects by global id: each source asked once per level for its ids."""
        keys: list[NodeKey] = []
        for arg in ids:
            key = decode_id(arg.node.value) if isinstance(arg.node, StringValueNode) else None
            if isinstance(arg.node, StringValueNode) and key is None:
                continue  # a malformed id answers null without a request
            if key is None:
                unknown += 1
            elif key.source in self.by_name:
                keys.append(key)
        cost = NOTHING
        groups: set[str] = set()
        for source in {k.source for k in keys}:
            price = self.by_name[source]
            group_ids = {k.upstream_id for k in keys
                         if k.source == source and k.type is NodeType.PRODUCT_GROUP}
            product_ids = {(k.upstream_id, k.group_id) for k in keys
                           if k.source == source and k.type is NodeType.PRODUCT}
            if group_ids:
                groups.add(source)
                cost += self._group_lookup(price, len(group_ids))
            if product_ids:
                cost += Cost(len(product_ids) if price.product_by_id
                             else len({g for _, g in product_ids}) * price.group_pages)
        if unknown:
            cost += self._unknown_lookups(unknown)
            groups |= {p.name for p in self.prices if p.groups}
        # The items' own fields, once per object found (each one at most).
        items = self.selections(sets, target, _Scope(frozenset(groups)))
        return cost + items.times(max(count, unknown))

    def _group_lookup(self, price: SourcePrice, ids: int) -> Cost:
        if price.by_id_limit:
            return Cost(by_id=((price.name, ids, 1),))
        return Cost(tables=frozenset({price.name}))

    def _unknown_lookups(self, count: int) -> Cost:
        """``count`` ids of any type and source: the dearest lookup of each, every table."""
        per_id = max([1 if p.product_by_id else p.group_pages for p in self.prices
                      if p.product_by_id or p.group_products] or [0])
        cost = Cost(per_id * count)
        for price in self.prices:
            if price.groups:
                cost += self._group_lookup(price, count)
        return cost

    def change(self, args: Mapping[str, _Arg], sets: Sets, payload: GraphQLNamedType,
               groups: bool) -> Cost:
        """One event of a subscription: what is selected on its node, as on a group of any
        source the filter may name; the node itself costs nothing, but on a source with
        ``pass_through_header`` it is read again in the subscriber's name (a lookup)."""
        capable = [p for p in self.prices if p.groups]
        sources = _named_sources(capable, _object_fields(_arg(args, "filter")))
        cost = NOTHING
        for price in sources:
            if price.pass_through:
                cost += self._group_lookup(price, 1) if groups else Cost(
                    1 if price.product_by_id else price.group_pages)
        return cost + self.selections(sets, payload, _Scope(frozenset(p.name for p in sources)))

    def parent(self, sets: Sets, target: GraphQLNamedType, scope: _Scope) -> Cost:
        with_parents = [self.by_name[s] for s in scope.groups if self.by_name[s].parents]
        cost = NOTHING
        for price in with_parents:
            cost += self._group_lookup(price, 1)
        inner = _Scope(frozenset(p.name for p in with_parents))
        return cost + self.selections(sets, target, inner)


def _window(args: Mapping[str, _Arg]) -> tuple[int, bool, bool, bool]:
    """(size, may go forward, may go backward, may start at a cursor)."""
    first, last = _arg(args, "first"), _arg(args, "last")
    after, before = _arg(args, "after"), _arg(args, "before")
    backward = last.given or before.given
    forward = not (last.given and last.known) and not (before.given and before.known)
    sizes = [a.int_or(DEFAULT_PAGE_SIZE, ASSUMED_SIZE) for a in (first, last) if a.given]
    size = min(max(sizes or [DEFAULT_PAGE_SIZE]), ASSUMED_SIZE)
    return size, forward, backward, after.given or before.given


def _list_requests(page: int | None, size: int, forward: bool, backward: bool,
                   cursor: bool) -> int:
    requests = pages(size, page, mid_page=cursor) if forward else 0
    if backward:  # each source's total first, then a window ending anywhere
        requests = max(requests, 1 + pages(size, page, mid_page=True))
    return requests


def _named_sources(capable: Iterable[SourcePrice], filter_fields: dict[str, _Arg] | None
                   ) -> list[SourcePrice]:
    """The sources a list asks: those named in ``filter.sources`` (when known), else all."""
    capable = list(capable)
    named = _strings(filter_fields["sources"]) if filter_fields and "sources" in filter_fields \
        and filter_fields["sources"].given else None
    return capable if named is None else [p for p in capable if p.name in set(named)]


def _unpushed(price: SourcePrice, filter_fields: dict[str, _Arg] | None) -> bool:
    """The filter may ask what the source's upstream cannot apply (so: a table scan)."""
    if filter_fields is None:  # the whole filter is a variable
        return bool(GROUP_FILTER_ARGUMENTS - price.pushable)
    return any(arg.given and name in GROUP_FILTER_ARGUMENTS and name not in price.pushable
               for name, arg in filter_fields.items())


def _surely_table(price: SourcePrice, filter_fields: dict[str, _Arg] | None,
                  args: Mapping[str, _Arg]) -> bool:
    """The source is read only through its table (no window requests at all)."""
    order = _arg(args, "orderBy")
    if order.given and order.known:
        return True
    if filter_fields is None:
        return False
    return any(arg.given and arg.known and name in GROUP_FILTER_ARGUMENTS
               and name not in price.pushable for name, arg in filter_fields.items())



@functools.cache
def _introspection_sizes(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
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


def _declared_size(definition: GraphQLField) -> int | None:
    """The ``assumedSize`` of the ``@listSize`` a list field declares (strawberry keeps the
    field's directives on its definition)."""
    declared = (definition.extensions or {}).get("strawberry-definition")
    for directive in getattr(declared, "directives", ()):
        if isinstance(directive, ListSize) and directive.assumed_size is not None:
            return int(directive.assumed_size)
    return None


# -- the rule and the extension -----------------------------------------------------------------


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


class CostModel:
    """Prices operations against the configured sources, with what they last showed (group
    table sizes); refuses over ``max_cost`` upstream requests or ``max_values`` values in the
    answer.

    An operation whose page sizes come from variables is priced with each request's values
    (:meth:`check_request`) when, at the largest pages, its answer would be over the limit:
    the validation rule cannot know them."""

    def __init__(self, adapters: Mapping[str, SourceAdapter], max_cost: int,
                 max_values: int = SATURATED) -> None:
        self.adapters = adapters
        self.max_cost = max_cost
        self.max_values = max_values
        self._rules: dict[Prices, type[ASTValidationRule]] = {}
        self._prices: dict[str, tuple[tuple[int | None, int | None], SourcePrice]] = {}
        # id(document) → its operations priced per request: id(operation) → sizes → values
        self._per_request: dict[int, dict[int, dict[tuple[Any, ...], Price]]] = {}
        self.prices()  # a source whose adapter declares no read cost stops the start here

    def prices(self) -> Prices:
        """Each source's price now (rebuilt only when what it learned from a scan changed)."""
        prices = []
        for name, adapter in self.adapters.items():
            learned = (adapter.table_size, adapter.largest_group)
            kept = self._prices.get(name)
            if kept is None or kept[0] != learned:
                kept = self._prices[name] = (learned, SourcePrice.of(adapter))
            prices.append(kept[1])
        return tuple(prices)

    def price(self, schema: GraphQLSchema, document: DocumentNode,
              operation_name: str | None = None, variables: Mapping[str, Any] | None = None,
              prices: Prices | None = None) -> Price:
        """The price of one operation of ``document`` (the only one, or the one named; the
        dearest when none is named in a document of several), with ``variables``' page sizes
        when given."""
        fragments = _fragments(document)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)
                      and (operation_name is None or (d.name and d.name.value == operation_name))]
        prices = prices or self.prices()
        found = [_safely(_Pricer(schema, fragments, prices, variables,
                                 o.variable_definitions or ()), o) for o in operations]
        return max(found, key=lambda p: (p.requests, p.values), default=Price(0, 0))

    def cost(self, schema: GraphQLSchema, document: DocumentNode,
             operation_name: str | None = None, prices: Prices | None = None) -> int:
        """The upstream requests one operation of ``document`` may make (see :meth:`price`)."""
        return self.price(schema, document, operation_name, prices=prices).requests

    def refusals(self, price: Price, node: OperationDefinitionNode | None = None
                 ) -> list[GraphQLError]:
        """A ``QUERY_TOO_COMPLEX`` error when ``price`` is over a limit (the upstream requests
        first: one error is enough to refuse)."""
        errors = []
        if price.requests > self.max_cost:
            return [GraphQLError(
                f"the query may cost {price.requests} upstream requests, more than the limit "
                f"of {self.max_cost} ([limits] max_cost): ask for fewer or smaller lists",
                node, extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value,
                                  "cost": price.requests, "maxCost": self.max_cost})]
        if price.values > self.max_values and not price.guessed:
            part = price.part()
            errors.append(GraphQLError(
                f"the answer may hold {price.values:,} values, more than the limit of "
                f"{self.max_values:,} ([limits] max_response_values); most are under "
                f"`{part}`: ask for fewer or smaller lists, or fewer fields of each item",
                node, extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value,
                                  "responseValues": price.values,
                                  "maxResponseValues": self.max_values, "largest": part}))
        return errors

    def defer(self, document: DocumentNode, operation: OperationDefinitionNode) -> None:
        """Price ``operation`` again with each request's page sizes (its own are variables)."""
        key = id(document)
        if key not in self._per_request:
            self._per_request[key] = {}
            weakref.finalize(document, self._per_request.pop, key, None)
        self._per_request[key].setdefault(id(operation), {})

    def check_request(self, schema: GraphQLSchema, document: DocumentNode,
                      operation_name: str | None, variables: Mapping[str, Any] | None
                      ) -> list[GraphQLError]:
        """The refusal of a request whose operation, with its variables' page sizes, is over
        the answer's limit (only operations the rule deferred are priced: the others were
        whole at validation)."""
        operations = self._per_request.get(id(document))
        if not operations:
            return []
        operation = get_operation_ast(document, operation_name)
        kept = None if operation is None else operations.get(id(operation))
        if kept is None or operation is None:
            return []
        sent = variables or {}
        sizes = tuple(_size_key(sent.get(d.variable.name.value, _NOT_SENT))
                      for d in operation.variable_definitions or ())
        price = kept.get(sizes)
        if price is None:
            price = _safely(_Pricer(schema, _fragments(document), self.prices(), sent,
                                    operation.variable_definitions or ()), operation)
            if len(kept) >= MAX_SIZES_KEPT:
                kept.clear()
            kept[sizes] = price
        return self.refusals(price)

    def rule(self) -> type[ASTValidationRule]:
        """The validation rule for the current prices: one class per prices, so a validation
        kept for a document is redone once when a source's table size changes."""
        prices = self.prices()
        rule = self._rules.get(prices)
        if rule is None:
            if len(self._rules) >= 16:
                self._rules.clear()
            rule = self._rules[prices] = _rule_for(self, prices)
        return rule


MAX_SIZES_KEPT = 16  # prices kept per operation priced per request (one per page sizes sent)
_NOT_SENT = object()


def _size_key(value: Any) -> Any:
    """What of a variable's value can change a price (a page size): ints and null as they are."""
    if value is None or value is _NOT_SENT or type(value) is int:
        return value
    return "other"


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)}


def _safely(pricer: _Pricer, operation: OperationDefinitionNode) -> Price:
    try:
        cost = pricer.operation(operation)
    except RecursionError:
        return SATURATED_PRICE  # fragments nested beyond Python's stack: not a query to run
    return Price(cost.total(pricer.by_name), cost.values, cost.largest, pricer.guessed)


def _rule_for(model: CostModel, prices: Prices) -> type[ASTValidationRule]:
    class QueryCost(ASTValidationRule):
        """Refuses an operation that may cost more upstream requests than ``max_cost``, or
        whose answer may hold more than ``max_values`` values."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.schema = context.schema
            self.document = context.document
            self.fragments = _fragments(context.document)

        def enter_operation_definition(self, node: OperationDefinitionNode,
                                       *_: Any) -> VisitorAction:
            pricer = _Pricer(self.schema, self.fragments, prices,
                             variable_definitions=node.variable_definitions or ())
            price = _safely(pricer, node)
            for error in model.refusals(price, node):
                self.report_error(error)
            if price.guessed and price.values > model.max_values:
                model.defer(self.document, node)
            return SKIP

    return QueryCost


class CostLimit(SchemaExtension):
    """Adds the cost rule to the schema's validation (as strawberry's AddValidationRules does),
    for the prices of the moment. (An operation whose page sizes are variables is priced with
    each request's values by :meth:`CostModel.check_request`, which the document cache runs
    once the document passed validation.)"""

    def __init__(self, *, model: CostModel) -> None:
        self.model = model

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, self.model.rule())
        yield
