"""The cost model: what each field costs per source, multiplied and summed as the resolvers
really call their upstreams (the end-to-end test compares with the emulators' request logs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from graphql import GraphQLObjectType, parse, specified_rules, validate

from gateway.config import LimitSettings, SourceKind
from gateway.demo import demo_config
from gateway.edge.runtime import Runtime
from gateway.emulators import KINDS
from gateway.graph import build_schema
from gateway.graph.connection import LIST_SIZE
from gateway.graph.cost import SIZED_FIELDS, SLICING_ARGUMENTS, CostModel, SourcePrice
from gateway.graph.pricing import FIELD_PRICES
from gateway.ids import NodeKey, NodeType, encode_id
from gateway.sources import ADAPTERS
from gateway.sources.base import ReadCost, SourceAdapter, UndeclaredReadCost
from gateway.sources.records import Capability
from tests.corpus import CORPUS

SCHEMA = build_schema()._schema
AXIM_GROUP = "6686d2c01f2ae707a53adcf1"
# What the emulators' tables hold (joptic 270 groups: 3 pages of 100; axim 115: 3 pages of 50;
# axim's largest group 60 products: 2 pages of 50).
LEARNED = {"carecloud": (60, 0), "joptic": (270, 0), "axim": (115, 60)}


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    config = demo_config({kind: f"http://127.0.0.1:9/{kind}" for kind in KINDS})
    yield Runtime.build(config)


@pytest.fixture
def model(runtime: Runtime) -> CostModel:
    for name, (size, largest) in LEARNED.items():
        runtime.adapters[name].table_size = size
        runtime.adapters[name].largest_group = largest
    return CostModel(runtime.adapters, LimitSettings().max_cost)


def cost(model: CostModel, query: str) -> int:
    return model.cost(SCHEMA, parse(query))


def gid(source: str, upstream: str) -> str:
    return encode_id(NodeKey(NodeType.PRODUCT_GROUP, source, upstream))


def pid(source: str, upstream: str, group: str | None = None) -> str:
    return encode_id(NodeKey(NodeType.PRODUCT, source, upstream, group))


def test_the_model_sizes_connections_as_the_published_list_size() -> None:
    assert set(LIST_SIZE.slicing_arguments or ()) == set(SLICING_ARGUMENTS)
    assert set(LIST_SIZE.sized_fields or ()) == set(SIZED_FIELDS)


def test_axim_groups_with_the_same_first_products_cost_one_call(model: CostModel) -> None:
    query = """{ productGroups(first: 20, filter: {sources: ["axim"]}) {
      nodes { name products(first: 5) { totalCount nodes { name } } } } }"""
    assert cost(model, query) == 1


def test_different_product_pages_cost_one_call_per_group(model: CostModel) -> None:
    query = """{ productGroups(first: 20, filter: {sources: ["axim"]}) {
      nodes { a: products(first: 5) { nodes { name } } b: products(first: 5, search: "x") {
        nodes { name } } } } }"""
    assert cost(model, query) == 1 + 20 * 2


def test_a_product_page_over_fifty_is_two_calls_per_group(model: CostModel) -> None:
    query = """{ productGroups(first: 10, filter: {sources: ["axim"]}) {
      nodes { products(first: 60) { nodes { name } } } } }"""
    assert cost(model, query) == 1 + 10 * 2


def test_the_alias_attack_of_issue_11(model: CostModel) -> None:
    aliases = " ".join(f'p{i}: products(first: 1, search: "{i}") {{ nodes {{ name }} }}'
                       for i in range(40))
    query = (f'{{ productGroups(first: 100, filter: {{sources: ["axim"]}}) '
             f'{{ nodes {{ {aliases} }} }} }}')
    assert cost(model, query) == 2 + 100 * 40


def test_every_source_pays_its_own_pages(model: CostModel) -> None:
    # CareCloud: one offset/count request; Joptic: 100 a page; Axim: 50 a page.
    assert cost(model, "{ productGroups(first: 100) { nodes { name } } }") == 1 + 1 + 2
    # After a cursor a window may straddle two pages (CareCloud's offset/count never does).
    assert cost(model, "query($a: String) { productGroups(first: 100, after: $a) { "
                       "nodes { name } } }") == 1 + 2 + 3
    # `last` asks each source's total first.
    assert cost(model, "{ productGroups(last: 10) { nodes { name } } }") == 2 + 3 + 3
    assert cost(model, "{ products(first: 100) { nodes { name } } }") == 1


def test_an_order_or_a_filter_an_upstream_cannot_apply_reads_the_table(model: CostModel) -> None:
    # The merged order: every table once (1 + 3 + 3 requests), whatever the page.
    assert cost(model, "{ productGroups(first: 100, orderBy: {field: NAME}) { "
                       "nodes { name } } }") == 1 + 3 + 3
    # status: pushed to Joptic; CareCloud and Axim filter their tables.
    assert cost(model, "{ productGroups(first: 20, filter: {status: ACTIVE}) { "
                       "nodes { name } } }") == 1 + 1 + 3
    # A filter in a variable may be anything: table and pages.
    assert cost(model, "query($f: ProductGroupFilter) { productGroups(first: 20, filter: $f) "
                       "{ nodes { name } } }") == (1 + 1) + (1 + 3) + (1 + 3)


def test_a_parent_walk_reads_each_table_once(model: CostModel) -> None:
    query = """{ productGroups(first: 20, filter: {sources: ["joptic", "carecloud"]}) {
      nodes { name parent { name parent { name parent { name } } } } } }"""
    assert cost(model, query) == 2 + 3 + 1


def test_lookups_by_id_per_source(model: CostModel) -> None:
    ids = [gid("carecloud", "12"), gid("joptic", "abc"), gid("axim", AXIM_GROUP),
           pid("axim", "p1", AXIM_GROUP), pid("axim", "p2", AXIM_GROUP), pid("comestri", "7"),
           pid("comestri", "8"), "not an id"]
    literal = ", ".join(f'"{i}"' for i in ids)
    # CareCloud's table, Joptic's 3 pages, one Axim group's 2 product pages (the group itself
    # comes with the first), two Comestri calls.
    assert cost(model, f"{{ nodes(ids: [{literal}]) {{ id }} }}") == 1 + 3 + 2 + 2
    groups = [gid("axim", str(n) * 24) for n in range(5)]
    four = ", ".join(f'"{i}"' for i in groups[:4])
    assert cost(model, f"{{ nodes(ids: [{four}]) {{ id }} }}") == 3  # more than 3: the table
    # Five groups, two with products looked up: three groups by id, two product lists.
    products = [pid("axim", "p", str(n) * 24) for n in range(2)]
    five = ", ".join(f'"{i}"' for i in groups + products)
    assert cost(model, f"{{ nodes(ids: [{five}]) {{ id }} }}") == 3 + 2 * 2


def test_unknown_ids_cost_the_dearest_lookup_each(model: CostModel) -> None:
    one = cost(model, "query($id: ID!) { node(id: $id) { id } }")
    assert one == 2 + 1 + 3 + 1  # an Axim product's pages, every table, an Axim group
    hundred = cost(model, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }")
    assert hundred == 100 * 2 + 1 + 3 + 3  # a hundred Axim groups: its table


def test_a_variable_page_size_counts_as_the_largest(model: CostModel) -> None:
    inner = '{ nodes { products(first: 60) { nodes { name } } } }'
    fixed = f'{{ productGroups(first: 10, filter: {{sources: ["axim"]}}) {inner} }}'
    variable = (f'query($n: Int = 10) {{ productGroups(first: $n, filter: {{sources: ["axim"]}})'
                f' {inner} }}')
    assert cost(model, fixed) == 1 + 10 * 2
    assert cost(model, variable) == 2 + 100 * 2


def test_fragments_and_aliases_are_summed_and_multiplied(model: CostModel) -> None:
    query = """{ a: productGroups(first: 10, filter: {sources: ["axim"]}) { nodes { ...P } }
                 b: productGroups(first: 10, filter: {sources: ["axim"]}) {
                   edges { node { ...P } } } }
               fragment P on ProductGroup { x: products(first: 60) { nodes { name } }
                                            y: products(first: 60) { nodes { name } } }"""
    assert cost(model, query) == 2 * (1 + 10 * 2 * 2)


def test_fields_without_upstream_work_cost_nothing(model: CostModel) -> None:
    assert cost(model, "{ sources { id kind capabilities } __typename }") == 0


def test_before_any_scan_a_table_is_priced_at_its_scan_limit(runtime: Runtime) -> None:
    for adapter in runtime.adapters.values():
        adapter.table_size = adapter.largest_group = None
    model = CostModel(runtime.adapters, 1000)
    # Joptic: 5000 / 100 pages; Axim: 5000 / 50; CareCloud one request for any table.
    assert cost(model, "{ productGroups(orderBy: {field: NAME}) { nodes { name } } }") \
        == 1 + 50 + 100


def test_every_published_readme_and_suite_query_is_within_the_default_cost(
        runtime: Runtime) -> None:
    for adapter in runtime.adapters.values():
        adapter.table_size = adapter.largest_group = None  # the dearest prices: nothing learned
    limits = LimitSettings()
    model = CostModel(runtime.adapters, limits.max_cost, limits.max_response_values)
    for query in CORPUS:
        document = parse(query)
        assert validate(SCHEMA, document, (*specified_rules, model.rule())) == [], query
        # With room: the largest answer (100 groups x 100 products' names) is a tenth of it.
        # (Pages in variables are priced with each request's values: the e2e tests send them.)
        price = model.price(SCHEMA, document)
        assert price.guessed or price.values * 9 < limits.max_response_values, query


def test_the_rule_refuses_over_the_limit_with_the_cost(model: CostModel) -> None:
    query = "{ productGroups(first: 100) { nodes { products(first: 100) { nodes { name } } } } }"
    assert cost(model, query) == 4 + 100 * 2
    small = CostModel(model.adapters, 100)
    errors = validate(SCHEMA, parse(query), (small.rule(),))
    assert [e.extensions for e in errors] == [
        {"code": "QUERY_TOO_COMPLEX", "cost": 204, "maxCost": 100}]
    assert "[limits] max_cost" in errors[0].message
    assert validate(SCHEMA, parse(query), (CostModel(model.adapters, 204).rule(),)) == []


def test_a_new_table_size_makes_a_new_rule(model: CostModel) -> None:
    rule = model.rule()
    assert model.rule() is rule
    model.adapters["joptic"].table_size = 1000
    assert model.rule() is not rule


def test_a_fragment_on_the_connection_is_priced_like_its_fields(model: CostModel) -> None:
    inline = """{ productGroups(first: 10, filter: {sources: ["axim"]}) {
      nodes { products(first: 60) { totalCount } } } }"""
    spread = """{ productGroups(first: 10, filter: {sources: ["axim"]}) { ...G } }
      fragment G on ProductGroupConnection { nodes { products(first: 60) { totalCount } } }"""
    assert cost(model, spread) == cost(model, inline) == 1 + 10 * 2


def test_fields_merged_under_one_name_are_priced_as_they_run(model: CostModel) -> None:
    # graphql-core merges the two lists into one field; its groups then ask two product pages,
    # so the look-ahead cannot fold them: one list call, then two calls per group.
    query = """{
      productGroups(first: 10, filter: {sources: ["axim"]}) {
        nodes { products(first: 5) { nodes { name } } } }
      productGroups(first: 10, filter: {sources: ["axim"]}) {
        nodes { p: products(first: 5, search: "x") { nodes { name } } } } }"""
    assert cost(model, query) == 1 + 10 * 2


def test_a_cyclic_fragment_is_priced_once(model: CostModel) -> None:
    query = """{ productGroups(first: 5, filter: {sources: ["joptic"]}) { nodes { ...A } } }
      fragment A on ProductGroup { name parent { ...A } }"""
    assert cost(model, query) == 1 + 3


# -- the answer's size ----------------------------------------------------------------------------


def values(model: CostModel, query: str, variables: dict[str, object] | None = None) -> int:
    return model.price(SCHEMA, parse(query), variables=variables).values


def test_every_field_and_list_item_is_a_value(model: CostModel) -> None:
    # sources: one value, and per source (4) the item and its two fields.
    assert values(model, "{ sources { id kind } }") == 1 + 4 * (1 + 2)
    # A connection: its fields, and per item of the page (10) the item and its fields.
    assert values(model, "{ productGroups(first: 10) { totalCount nodes { id name } } }") \
        == 1 + 1 + 1 + 10 * (1 + 2)
    # Edges: each an object with its cursor and its node.
    assert values(model, "{ productGroups(first: 10) { edges { cursor node { id } } } }") \
        == 1 + 1 + 10 * (1 + 1 + 1 + 1)


def test_a_list_of_records_is_sized_by_the_list_size_it_publishes(model: CostModel) -> None:
    product = pid("comestri", "1")
    # categories: @listSize(assumedSize: 10); variants 10, each with its options (5).
    assert values(model, f'{{ product(id: "{product}") {{ categories }} }}') \
        == 1 + 1 + 1 + 10
    assert values(model, f'{{ product(id: "{product}") {{ variants {{ options {{ name }} }} }} }}'
                  ) == 1 + 1 + 1 + 10 * (1 + 1 + 5 * (1 + 1))


def test_an_abstract_type_is_priced_as_its_largest_possible_type(model: CostModel) -> None:
    query = f"""{{ node(id: "{gid('joptic', '1')}") {{
      ... on ProductGroup {{ name code status }} ... on Product {{ name }} }} }}"""
    assert values(model, query) == 1 + 1 + 3


def test_aliases_and_fragments_multiply_the_answer(model: CostModel) -> None:
    one = values(model, "{ a: productGroups(first: 5) { nodes { ...G } } } "
                        "fragment G on ProductGroup { name code }")
    three = values(model, "{ a: productGroups(first: 5) { nodes { ...G } } "
                          "b: productGroups(first: 5) { nodes { ...G } } "
                          "c: productGroups(first: 5) { nodes { ...G ...G } } } "
                          "fragment G on ProductGroup { name code }")
    assert three == 3 * one  # a fragment spread twice in one selection merges


def test_introspection_is_priced_with_the_longest_lists_of_the_schema(
        model: CostModel) -> None:
    types = len(SCHEMA.type_map)
    assert values(model, "{ __schema { types { name } } }") == 1 + 1 + types * (1 + 1)
    nested = values(model, "{ __schema { types { fields { type { fields { name } } } } } }")
    assert nested > types * 10 * 10


def test_the_error_names_the_part_where_the_answer_multiplies(model: CostModel) -> None:
    small = CostModel(model.adapters, 1000, max_values=1000)
    query = """{ sources { id } productGroups(first: 10) { nodes { name
      products(first: 50) { nodes { sku variants { sku } } } } } }"""
    errors = validate(SCHEMA, parse(query), (small.rule(),))
    assert [e.extensions for e in errors] == [{
        "code": "QUERY_TOO_COMPLEX", "responseValues": values(model, query),
        "maxResponseValues": 1000, "largest": "productGroups.nodes.products.nodes.variants"}]
    assert "[limits] max_response_values" in errors[0].message


def test_page_sizes_in_variables_are_priced_per_request(model: CostModel) -> None:
    small = CostModel(model.adapters, 1000, max_values=5000)
    query = """query($n: Int, $m: Int = 5) { productGroups(first: $n) {
      nodes { products(first: $m) { nodes { sku name } } } } }"""
    document = parse(query)
    # At the largest pages it would be over: validation leaves it to each request.
    assert validate(SCHEMA, document, (small.rule(),)) == []
    assert small.check_request(SCHEMA, document, None, {"n": 10, "m": 10}) == []
    assert small.check_request(SCHEMA, document, None, {"n": 100}) == []  # m: its default
    refused = small.check_request(SCHEMA, document, None, {"n": 100, "m": 100})
    assert [e.extensions["code"] for e in refused] == ["QUERY_TOO_COMPLEX"]  # type: ignore[index]
    # A document whose pages are literals is decided once, at validation.
    literal = parse("{ productGroups(first: 100) { nodes { products(first: 100) { nodes { sku } }"
                    " } } }")
    assert len(validate(SCHEMA, literal, (small.rule(),))) == 1
    assert small.check_request(SCHEMA, literal, None, {}) == []


def test_an_event_of_a_pass_through_source_is_read_again_in_the_subscribers_name(
        runtime: Runtime) -> None:
    query = ("subscription { productGroupChanged(filter: {sources: [\"joptic\"]}) "
             "{ node { name } } }")
    assert CostModel(runtime.adapters, 1000).cost(SCHEMA, parse(query)) == 0
    joptic = runtime.adapters["joptic"]
    config = joptic.config
    joptic.config = config.model_copy(update={"pass_through_header": "X-Joptic-Token"})
    try:
        # The subscriber's own reading of the node: Joptic's group table, once an event.
        priced = CostModel(runtime.adapters, 1000).cost(SCHEMA, parse(query))
    finally:
        joptic.config = config
    assert priced == SourcePrice.of(joptic).table_pages >= 1


class _Undeclared(SourceAdapter):
    """A new kind's adapter that says what it can do but not what its reads cost."""

    kind = SourceKind.CARECLOUD
    capabilities = (Capability.PRODUCT_GROUPS,)


def test_a_source_kind_without_a_declared_read_cost_stops_the_start(runtime: Runtime) -> None:
    adapter = _Undeclared(runtime.adapters["carecloud"].config,
                          runtime.adapters["carecloud"].client)
    with pytest.raises(UndeclaredReadCost, match="declares no read cost"):
        CostModel({**runtime.adapters, "new": adapter}, LimitSettings().max_cost)


def test_every_registered_kind_declares_its_read_cost() -> None:
    for kind, adapter_class in ADAPTERS.items():
        assert isinstance(adapter_class.read_cost, ReadCost), kind


def test_every_priced_field_is_a_field_of_the_schema() -> None:
    federated = build_schema(federation=True)._schema
    for coordinate in FIELD_PRICES:
        type_name, field_name = coordinate.split(".")
        schema = federated if field_name == "_entities" else SCHEMA
        owner = schema.get_type(type_name)
        assert isinstance(owner, GraphQLObjectType) and field_name in owner.fields, coordinate


def test_deferred_and_streamed_parts_are_priced_as_without_the_directives(
        model: CostModel) -> None:
    """An answer in parts costs what the whole answer costs: the price and the answer's size
    count every deferred fragment and every streamed item."""
    parts = """{ groups: productGroups(first: 5) { nodes { name } }
      ... @defer(label: "slow") { products(first: 3) { nodes @stream(initialCount: 1) { name } } }
      nodes(ids: ["a", "b"]) @stream(initialCount: 1) { id } }"""
    whole = parts.replace('... @defer(label: "slow") {', "... {").replace(
        " @stream(initialCount: 1)", "")
    assert cost(model, parts) == cost(model, whole) > 0
    assert values(model, parts) == values(model, whole) > 0
