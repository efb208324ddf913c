"""The walk that applies the prices: an operation's fields as graphql-core executes them (the one
walk, :mod:`gateway.graph.walk`), each priced by what its resolver really does with each source
(:data:`FIELD_PRICES`, keyed by schema coordinate), multiplied by the sizes of the lists around
it. What costs what is the cost rule's docstring (:mod:`gateway.graph.cost`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    StringValueNode,
    TypeMetaFieldDef,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)

from gateway.graph.arguments import Arg, arg, field_args, object_fields, strings, value_of
from gateway.graph.cursors import DEFAULT_PAGE_SIZE
from gateway.graph.folding import NestedPage, nested_page
from gateway.graph.prices import (
    ASSUMED_SIZE,
    GROUP_FILTER_ARGUMENTS,
    NODES_ASSUMED,
    NOTHING,
    SLICING_ARGUMENTS,
    Cost,
    Prices,
    SourcePrice,
    declared_size,
    introspection_sizes,
    list_requests,
)
from gateway.graph.walk import collect_fields, selected
from gateway.ids import NodeKey, NodeType, decode_id

__all__ = ["FIELD_PRICES", "Pricer"]

# -- the walk -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scope:
    """What the objects of a selection are: the sources their groups may come from, and the
    sources whose group products the list's own call already carries (Axim's look-ahead)."""

    groups: frozenset[str] = frozenset()
    folded: frozenset[str] = frozenset()


Sets = tuple[SelectionSetNode, ...]  # the selection sets of fields merged under one key


@dataclass
class Pricer:
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

    def args(self, node: FieldNode) -> dict[str, Arg]:
        """The field's arguments; a page size read from a variable is the request's value."""
        args = field_args(node)
        for name in SLICING_ARGUMENTS:
            value = args.get(name)
            if value is not None and isinstance(value.node, VariableNode):
                args[name] = self._sized(value.node)
        return args

    def _sized(self, variable: VariableNode) -> Arg:
        name = variable.name.value
        if self.sizes is not None and name in self.sizes:
            sent = self.sizes[name]
            if sent is None:
                return Arg(NullValueNode())
            if type(sent) is int and 0 <= sent <= ASSUMED_SIZE:
                return Arg(IntValueNode(value=str(sent)))
        elif self.sizes is not None:  # not sent: the variable's default, else no argument
            default = self._default(name)
            if default is None or isinstance(default, IntValueNode | NullValueNode):
                return Arg(default)
        self.guessed = True
        return Arg(variable)

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
        priced = FIELD_PRICES.get(f"{parent.name}.{name}")
        if priced is not None:
            return priced(self, _Field(args, sets, target, scope))
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
        declared = declared_size(definition)
        if declared is not None:
            return declared
        return introspection_sizes(self.schema).get((parent.name, name), ASSUMED_SIZE)

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

    def root_list(self, args: Mapping[str, Arg], sets: Sets, connection: GraphQLNamedType,
                  groups: bool) -> Cost:
        size, forward, backward, cursor = _window(args)
        filter_fields = object_fields(arg(args, "filter"))
        capable = [p for p in self.prices if (p.groups if groups else p.products)]
        sources = _named_sources(capable, filter_fields)
        order = arg(args, "orderBy").given if groups else False
        cost = NOTHING
        nested = self._nested(sets) if groups else None
        folded: set[str] = set()
        for price in sources:
            table = groups and (order or _unpushed(price, filter_fields))
            windowed = not (groups and _surely_table(price, filter_fields, args))
            if table:
                cost += Cost(tables=frozenset({price.name}))
            if windowed:
                cost += Cost(list_requests(price.list_page, size, forward, backward, cursor))
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
        calls = [{name: value_of(arg) for name, arg in self.args(item).items()}
                 for item in selected(items, self.fragments) if item.name.value == "products"]
        return nested_page(calls)

    def group_products(self, args: Mapping[str, Arg], sets: Sets,
                       connection: GraphQLNamedType, scope: _Scope) -> Cost:
        size, forward, backward, cursor = _window(args)
        paying = [self.by_name[s] for s in scope.groups
                  if self.by_name[s].group_products and s not in scope.folded]
        cost = NOTHING
        if paying:
            cost = Cost(max(list_requests(p.list_page, size, forward, backward, cursor)
                            for p in paying))
        items, total_count = self.connection(sets, connection, size, _Scope())
        if total_count and cursor and paying:
            cost += Cost(1)
        return cost + items

    # lookups ----------------------------------------------------------------------------------

    def lookup_list(self, sets: Sets, target: GraphQLNamedType, ids: Arg) -> Cost:
        if isinstance(ids.node, ListValueNode):
            return self.lookup(sets, target, [Arg(v) for v in ids.node.values],
                               len(ids.node.values))
        return self.lookup(sets, target, [], NODES_ASSUMED, unknown=NODES_ASSUMED)

    def lookup(self, sets: Sets, target: GraphQLNamedType, ids: list[Arg], count: int,
               *, unknown: int = 0) -> Cost:
        """Objects by global id: each source asked once per level for its ids."""
        keys: list[NodeKey] = []
        for given in ids:
            node = given.node
            key = decode_id(node.value) if isinstance(node, StringValueNode) else None
            if isinstance(node, StringValueNode) and key is None:
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
                if price.by_id_carries_products:  # the product lookups' calls carry these
                    group_ids -= {g for _, g in product_ids}
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

    def change(self, args: Mapping[str, Arg], sets: Sets, payload: GraphQLNamedType,
               groups: bool) -> Cost:
        """One event of a subscription: what is selected on its node, as on a group of any
        source the filter may name; the node itself costs nothing, but on a source with
        ``pass_through_header`` it is read again in the subscriber's name (a lookup)."""
        capable = [p for p in self.prices if p.groups]
        sources = _named_sources(capable, object_fields(arg(args, "filter")))
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


@dataclass(frozen=True, slots=True)
class _Field:
    """One field to price: its arguments, selections, named type and scope."""

    args: Mapping[str, Arg]
    sets: Sets
    target: GraphQLNamedType
    scope: _Scope


# The fields that call upstreams, by schema coordinate, and how each is priced: what its resolver
# does with each source. Every other field costs its own selections, once per item of a list.
FIELD_PRICES: dict[str, Callable[[Pricer, _Field], Cost]] = {
    "Query.productGroups": lambda p, f: p.root_list(f.args, f.sets, f.target, True),
    "Query.products": lambda p, f: p.root_list(f.args, f.sets, f.target, False),
    "Query.node": lambda p, f: p.lookup(f.sets, f.target, [arg(f.args, "id")], 1),
    "Query.productGroup": lambda p, f: p.lookup(f.sets, f.target, [arg(f.args, "id")], 1),
    "Query.product": lambda p, f: p.lookup(f.sets, f.target, [arg(f.args, "id")], 1),
    "Query.nodes": lambda p, f: p.lookup_list(f.sets, f.target, arg(f.args, "ids")),
    "Query._entities": lambda p, f: p.lookup_list(f.sets, f.target,
                                                  arg(f.args, "representations")),
    "Subscription.productGroupChanged": lambda p, f: p.change(f.args, f.sets, f.target, True),
    "Subscription.productChanged": lambda p, f: p.change(f.args, f.sets, f.target, False),
    "ProductGroup.parent": lambda p, f: p.parent(f.sets, f.target, f.scope),
    "ProductGroup.products": lambda p, f: p.group_products(f.args, f.sets, f.target, f.scope),
}


def _window(args: Mapping[str, Arg]) -> tuple[int, bool, bool, bool]:
    """(size, may go forward, may go backward, may start at a cursor)."""
    first, last = arg(args, "first"), arg(args, "last")
    after, before = arg(args, "after"), arg(args, "before")
    backward = last.given or before.given
    forward = not (last.given and last.known) and not (before.given and before.known)
    sizes = [a.int_or(DEFAULT_PAGE_SIZE, ASSUMED_SIZE) for a in (first, last) if a.given]
    size = min(max(sizes or [DEFAULT_PAGE_SIZE]), ASSUMED_SIZE)
    return size, forward, backward, after.given or before.given


def _named_sources(capable: Iterable[SourcePrice], filter_fields: dict[str, Arg] | None
                   ) -> list[SourcePrice]:
    """The sources a list asks: those named in ``filter.sources`` (when known), else all."""
    capable = list(capable)
    named = strings(filter_fields["sources"]) if filter_fields and "sources" in filter_fields \
        and filter_fields["sources"].given else None
    return capable if named is None else [p for p in capable if p.name in set(named)]


def _unpushed(price: SourcePrice, filter_fields: dict[str, Arg] | None) -> bool:
    """The filter may ask what the source's upstream cannot apply (so: a table scan)."""
    if filter_fields is None:  # the whole filter is a variable
        return bool(GROUP_FILTER_ARGUMENTS - price.pushable)
    return any(arg.given and name in GROUP_FILTER_ARGUMENTS and name not in price.pushable
               for name, arg in filter_fields.items())


def _surely_table(price: SourcePrice, filter_fields: dict[str, Arg] | None,
                  args: Mapping[str, Arg]) -> bool:
    """The source is read only through its table (no window requests at all)."""
    order = arg(args, "orderBy")
    if order.given and order.known:
        return True
    if filter_fields is None:
        return False
    return any(arg.given and arg.known and name in GROUP_FILTER_ARGUMENTS
               and name not in price.pushable for name, arg in filter_fields.items())



