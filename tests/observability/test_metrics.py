"""/metrics against what the emulators saw: upstream requests per source as their request logs
count them, cache hits as a warm repeat makes them, bounded labels, the breaker's state."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from gateway.emulators import KINDS
from gateway.observability.metrics import Metrics
from tests.conftest import UNCACHED, RunningEmulator
from tests.helpers import post
from tests.observed import (
    CACHED,
    CROSS,
    GROUP_PRODUCTS,
    PRODUCTS,
    config_for,
    scrape,
    serving,
)

ONE_AXIM_GROUP = ('query OneGroup($id: ID!) { node(id: $id) { ... on ProductGroup { name '
                  'products(first: 3) { nodes { sku } } } } }')
ROUTES = {"/product-groups", "/products", "/productGroup/all", "/productGroup/{id}"}


def logged(emulator: Callable[[str], RunningEmulator]) -> dict[str, int]:
    return {kind: len(emulator(kind).log) for kind in KINDS}


def test_upstream_requests_per_source_are_what_the_emulators_saw(
        emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator]) -> None:
    with serving(config_for(emulator_servers, defaults=UNCACHED)) as (_, url):
        assert post(url, CROSS).json()["data"]["productGroups"]["totalCount"] > 0
        groups = post(url, GROUP_PRODUCTS).json()["data"]["productGroups"]["nodes"]
        assert post(url, ONE_AXIM_GROUP, {"id": groups[0]["id"]}).json()["data"]["node"]
        assert post(url, PRODUCTS).json()["data"]["products"]["nodes"]
        seen = logged(emulator)
        metrics = scrape(url)
    assert all(seen.values()), seen  # every source was asked
    for kind in KINDS:
        assert metrics.total("gateway_upstream_requests_total", source=kind) == seen[kind], kind
        assert metrics.total("gateway_upstream_requests_total", source=kind, outcome="ok",
                             status_class="2xx") == seen[kind]
        assert metrics.total("gateway_upstream_request_duration_seconds_count",
                             source=kind) == seen[kind]
    # Route templates only: an Axim group's id never becomes a label.
    assert metrics.labels("gateway_upstream_requests_total", "route") <= ROUTES
    assert "/productGroup/{id}" in metrics.labels("gateway_upstream_requests_total", "route")
    for operation in ("CrossSourceGroups", "GroupsWithProducts", "OneGroup", "Products"):
        assert metrics.total("gateway_graphql_requests_total", operation=operation,
                             outcome="ok") == 1
    assert metrics.total("gateway_graphql_upstream_requests_sum") == sum(seen.values())
    assert metrics.total("gateway_graphql_upstream_requests_count") == 4


def test_cache_hits_are_those_of_a_warm_repeat(
        emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator]) -> None:
    cost = {"X-Gateway-Cost": "1"}
    queries = (GROUP_PRODUCTS, PRODUCTS, CROSS)  # (group tables are kept: no lookup warm)
    with serving(config_for(emulator_servers, defaults=CACHED)) as (_, url):
        for query in queries:
            post(url, query, headers=cost)
        cold, asked = scrape(url), logged(emulator)
        warm: dict[str, dict[str, int]] = {}
        for query in queries:
            actual = post(url, query, headers=cost).json()["extensions"]["cost"]["actual"]
            for kind, usage in actual["sources"].items():
                for key in ("cacheHits", "requests"):
                    warm.setdefault(kind, {"cacheHits": 0, "requests": 0})[key] += usage[key]
        after = scrape(url)
        assert logged(emulator) == asked  # the repeat asked no upstream
    for kind in KINDS:
        hits = (after.total("gateway_cache_lookups_total", layer="upstream", source=kind,
                            result="hit")
                - cold.total("gateway_cache_lookups_total", layer="upstream", source=kind,
                             result="hit"))
        usage = warm.get(kind, {"cacheHits": 0, "requests": 0})
        assert hits == usage["cacheHits"], kind
        assert usage["requests"] == 0
        # The cold run missed once per request it sent.
        assert cold.total("gateway_cache_lookups_total", layer="upstream", source=kind,
                          result="miss") == asked[kind]
    assert warm["axim"]["cacheHits"] > 0 and warm["comestri"]["cacheHits"] > 0


def test_response_cache_hits_and_misses_are_counted(
        emulator_servers: dict[str, RunningEmulator]) -> None:
    config = config_for(emulator_servers, defaults=CACHED, response_cache=True)
    with serving(config) as (_, url):
        for _ in range(3):
            assert post(url, GROUP_PRODUCTS).status_code == 200
        metrics = scrape(url)
    assert metrics.total("gateway_cache_lookups_total", layer="response", result="miss") == 1
    assert metrics.total("gateway_cache_lookups_total", layer="response", result="hit") == 2
    assert metrics.total("gateway_graphql_requests_total", operation="GroupsWithProducts",
                         outcome="ok") == 3


def test_operation_labels_are_bounded(emulator_servers: dict[str, RunningEmulator]) -> None:
    config = config_for(emulator_servers, defaults=UNCACHED,
                        metrics={"max_operation_names": 2})
    with serving(config) as (_, url):
        for name in ("A", "B", "C", "D"):
            post(url, f"query {name} {{ sources {{ id }} }}")
        post(url, "{ sources { id } }")
        post(url, "query A { nope }")  # a validation error
        post(url, "{")  # a parse error
        metrics = scrape(url)
    assert metrics.labels("gateway_graphql_requests_total", "operation") == {
        "A", "B", "other", "(none)"}
    assert metrics.total("gateway_graphql_requests_total", operation="other") == 2
    assert metrics.total("gateway_graphql_requests_total", operation="A", outcome="error") == 1
    assert metrics.total("gateway_graphql_requests_total", operation="(none)",
                         outcome="error") == 1


def test_failures_are_counted_by_outcome_and_the_breaker_state_shows(
        emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator]) -> None:
    config = config_for(emulator_servers, defaults={
        **UNCACHED, "breaker_threshold": 1, "max_retries": 1, "breaker_reset_seconds": 60})
    from gateway.emulators.common import Fault

    emulator("axim").faults.set(Fault(status=503))
    with serving(config) as (_, url):
        body = post(url, GROUP_PRODUCTS).json()
        assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
        post(url, GROUP_PRODUCTS)  # the breaker is open: refused without a request
        metrics = scrape(url)
    sent = len(emulator("axim").log)
    assert sent == 1  # one try opened the breaker (threshold 1): no retry got through
    assert metrics.total("gateway_upstream_requests_total", source="axim",
                         status_class="5xx") == sent
    assert metrics.total("gateway_upstream_requests_total", source="axim", outcome="refused") >= 1
    assert metrics.total("gateway_upstream_breaker_state", source="axim", state="open") == 1
    assert metrics.total("gateway_upstream_breaker_state", source="axim", state="closed") == 0
    assert metrics.total("gateway_upstream_breaker_state", source="joptic", state="closed") == 1
    assert metrics.total("gateway_graphql_requests_total", operation="GroupsWithProducts",
                         outcome="ok") == 0


def test_retried_tries_are_counted_apart(
        emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator]) -> None:
    from gateway.emulators.common import Fault

    emulator("axim").faults.set(Fault(status=503, count=1))  # the first try fails, then fine
    with serving(config_for(emulator_servers, defaults=UNCACHED)) as (_, url):
        assert "errors" not in post(url, GROUP_PRODUCTS).json()
        metrics = scrape(url)
    assert len(emulator("axim").log) == 2
    assert metrics.total("gateway_upstream_requests_total", source="axim") == 2
    assert metrics.total("gateway_upstream_requests_total", source="axim", outcome="retried",
                         status_class="5xx") == 1
    assert metrics.total("gateway_upstream_requests_total", source="axim", outcome="ok") == 1


def test_metrics_off_or_on_another_port_are_not_on_the_gateway_port(
        emulator_servers: dict[str, RunningEmulator]) -> None:
    for metrics in ({"enabled": False}, {"port": 9}):
        with serving(config_for(emulator_servers, defaults=UNCACHED, metrics=metrics)) as (_, url):
            assert httpx.get(f"{url}/metrics", timeout=30).status_code == 404


def test_each_metric_has_one_help_line_and_no_created_series() -> None:
    metrics = Metrics()
    metrics.graphql("Groups", "ok", 0.01, 1)
    metrics.response_hit.inc()
    text = metrics.exposition().decode()
    helps = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP")]
    assert len(helps) == len(set(helps)) and helps
    assert "_created" not in text
