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

import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    ValidationContext,
    get_operation_ast,
)
from graphql.language import VisitorAction
from graphql.language.visitor import SKIP
from strawberry.extensions import SchemaExtension

from gateway.errors import ErrorCode
from gateway.graph.limits import SATURATED
from gateway.graph.prices import (
    SATURATED_PRICE,
    SIZED_FIELDS,
    SLICING_ARGUMENTS,
    Cost,
    Price,
    Prices,
    SourcePrice,
)
from gateway.graph.pricing import Pricer
from gateway.sources.base import SourceAdapter

__all__ = ["SIZED_FIELDS", "SLICING_ARGUMENTS", "Cost", "CostLimit", "CostModel", "Price",
           "Prices", "SourcePrice"]

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
        found = [_safely(Pricer(schema, fragments, prices, variables,
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
            price = _safely(Pricer(schema, _fragments(document), self.prices(), sent,
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


def _safely(pricer: Pricer, operation: OperationDefinitionNode) -> Price:
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
            pricer = Pricer(self.schema, self.fragments, prices,
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
