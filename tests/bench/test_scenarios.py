"""Every benchmark scenario once, untimed, over real sockets: the benchmark cannot rot.

The gateway (uncached, like the session's test gateway), the stock-Strawberry reference and the
ceiling answer each scenario with the same bytes; an uncached query tagged as the benchmark tags
them (its own Accept-Language) answers the same bytes too and makes exactly one query's upstream
calls (the main query: one); the answers have the shapes the scenarios promise; and bench/wrk.lua
runs (when wrk is installed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.reference import ceiling_app, stock_app
from bench.run import WRK_SCRIPT
from bench.scenarios import (
    Scenario,
    body_bytes,
    gateway_config,
    load_dataset,
    post,
    prepare,
    tagged_language,
)
from gateway.config import parse_config
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from tests.conftest import RunningEmulator, RunningGateway

Prepared = tuple[list[Scenario], dict[str, bytes], dict[str, Any]]


@pytest.fixture(scope="module")
def prepared(gateway_server: RunningGateway) -> Prepared:
    url = f"{gateway_server.url}/graphql"
    scenarios = prepare(url)
    answers = {s.name: post(url, s) for s in scenarios}
    return scenarios, answers, load_dataset(url)


@pytest.fixture(scope="module")
def references(prepared: Prepared) -> Iterator[dict[str, str]]:
    _, answers, dataset = prepared
    with ServerThread({"ceiling": ceiling_app(answers), "stock": stock_app(dataset)}) as servers:
        yield servers.urls


def test_the_references_answer_the_gateways_bytes(prepared: Prepared,
                                                  references: dict[str, str]) -> None:
    scenarios, answers, _ = prepared
    assert [s.name for s in scenarios] == ["main", "merged", "nodes"]
    for scenario in scenarios:
        assert post(f"{references['stock']}/graphql", scenario) == answers[scenario.name]
        assert post(f"{references['ceiling']}/{scenario.name}", scenario) == answers[scenario.name]


def test_the_answers_are_what_the_scenarios_say(prepared: Prepared) -> None:
    scenarios, answers, dataset = prepared
    main = json.loads(answers["main"])["data"]["productGroups"]["nodes"]
    assert len(main) == 20
    assert all(len(g["products"]["nodes"]) <= 5 for g in main)
    assert sum(len(g["products"]["nodes"]) for g in main) > 50
    assert all(v["sku"] for g in main for p in g["products"]["nodes"] for v in p["variants"])

    merged = json.loads(answers["merged"])["data"]["productGroups"]
    assert merged["totalCount"] == len(dataset["groups"])
    names = [g["name"].casefold() for g in merged["nodes"]]
    assert len(names) == 20
    assert names == sorted(names)
    every = sorted(g["name"].casefold() for g in dataset["groups"] if g["name"] is not None)
    assert names == every[:20]

    nodes = json.loads(answers["nodes"])["data"]["nodes"]
    ids = next(s for s in scenarios if s.name == "nodes").variables or {}
    assert [n["id"] for n in nodes] == ids["ids"]
    sources = {json.loads(_unpadded(n["id"]))[2] for n in nodes}
    assert sources == {"carecloud", "joptic", "axim", "comestri"}
    assert {n["__typename"] for n in nodes} == {"ProductGroup", "Product"}


def _unpadded(global_id: str) -> str:
    import base64

    return base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()


def test_a_tagged_uncached_query_answers_the_same_and_makes_its_own_calls(
    prepared: Prepared, gateway_server: RunningGateway,
    emulator: Callable[[str], RunningEmulator],
) -> None:
    scenarios, answers, _ = prepared
    main = next(s for s in scenarios if s.name == "main")
    url = f"{gateway_server.url}/graphql"
    for n in range(2):  # the same query again: the uncached gateway calls the upstream again
        tagged = post(url, main, {"Accept-Language": tagged_language(f"test-{n}")})
        assert tagged == answers["main"]
    calls = emulator("axim").log.records  # cleared by the fixture before this test
    assert [c.path for c in calls] == ["/productGroup/all"] * 2
    assert sum(len(emulator(k).log.records) for k in ("carecloud", "joptic", "comestri")) == 0


@pytest.fixture(scope="module")
def bench_uncached_gateway(emulator_servers: dict[str, RunningEmulator]) -> Iterator[str]:
    """The gateway as the benchmark's uncached rows configure it (no cache, no de-duplication)."""
    text = gateway_config({k: e.url for k, e in emulator_servers.items()},
                          {k: e.token for k, e in emulator_servers.items()}, cached=False)
    with ServerThread({"gw": create_app(parse_config(tomllib.loads(text)))}) as servers:
        yield servers.urls["gw"]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install "
                                                        "wrk; .ci/run installs it)")
def test_the_wrk_script_sends_distinct_requests_and_reports(
    prepared: Prepared, bench_uncached_gateway: str, tmp_path: Path,
    emulator: Callable[[str], RunningEmulator],
) -> None:
    scenarios, _, _ = prepared
    main = next(s for s in scenarios if s.name == "main")
    body = tmp_path / "body.json"
    body.write_bytes(body_bytes(main))
    done = subprocess.run(
        ["wrk", "-t1", "-c2", "-d1s", "-s", str(WRK_SCRIPT), f"{bench_uncached_gateway}/graphql",
         "--", str(body), "distinct", tagged_language("t")], capture_output=True, text=True,
        timeout=60,
        check=True, env={**os.environ, "BENCH_WRK_MODE": "distinct"})
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))
    result = json.loads(line[len("BENCH "):])
    assert result["requests"] > 0
    assert result["sent"] >= result["requests"]
    assert result["gql_errors"] == result["bad_status"] == result["socket_errors"] == 0
    assert result["cpu_ticks"] >= 0
    # Each request was its own: as many upstream calls as requests (none shared).
    assert len(emulator("axim").log.records) >= result["requests"]
