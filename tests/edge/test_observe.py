"""One JSON line per GraphQL request, request ids end to end, a line per upstream failure, and
``extensions.cost`` against the emulators' request logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.emulators import KINDS
from gateway.emulators.common import Fault
from gateway.observability.logs import formatter
from tests.conftest import UNCACHED, RunningEmulator, RunningGateway
from tests.helpers import post
from tests.leaks import SecretScan
from tests.observed import GROUP_PRODUCTS, config_for, serving


class Lines(logging.Handler):
    """The JSON lines a logger's records become (what a production log file holds)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter(json=True))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def attach(self) -> None:
        """Hear the gateway's request and upstream loggers (after a server started: its start
        configures logging, which resets the handlers and levels of the gateway's loggers)."""
        for name in ("gateway.access", "gateway.upstream"):
            logger = logging.getLogger(name)
            logger.addHandler(self)
            logger.setLevel(logging.INFO)

    def detach(self) -> None:
        for name in ("gateway.access", "gateway.upstream"):
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.setLevel(logging.NOTSET)

    def objects(self, logger: str) -> list[dict[str, Any]]:
        decoded = [json.loads(line) for line in self.lines]
        return [line for line in decoded if line["logger"] == logger]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    yield handler
    handler.detach()


def test_one_line_per_request_names_its_id_operation_and_upstream_cost(
        emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator], lines: Lines,
        no_secret_leaks: SecretScan) -> None:
    with serving(config_for(emulator_servers, defaults=UNCACHED)) as (_, url):
        lines.attach()
        response = post(url, GROUP_PRODUCTS, headers={"X-Request-ID": "req-42.a:b"})
        no_secret_leaks.seen(response.text)
    assert response.headers["x-request-id"] == "req-42.a:b"
    [line] = lines.objects("gateway.access")
    assert line["request_id"] == "req-42.a:b"
    assert line["operation"] == "GroupsWithProducts"
    assert len(line["document"]) == 16
    assert (line["status"], line["outcome"], line["errors"], line["client"]) == (
        200, "ok", [], "")
    records = emulator("axim").log.records
    assert line["upstream"] == {"axim": {**line["upstream"]["axim"], "requests": len(records),
                                         "cacheHits": 0}}
    assert line["upstream_requests"] == len(records) == 1
    # The same id reached the upstream.
    assert [r.headers.get("x-request-id") for r in records] == ["req-42.a:b"]
    for text in lines.lines:
        no_secret_leaks.seen(text)
        assert emulator("axim").url not in text  # no upstream URL in any line


@pytest.mark.parametrize("sent", ["", "x" * 129, "has space", "a;b", "<script>"])
def test_an_unacceptable_request_id_is_replaced(
        gateway_server: RunningGateway, emulator: Callable[[str], RunningEmulator],
        sent: str) -> None:
    response = post(gateway_server.url, GROUP_PRODUCTS, headers={"X-Request-ID": sent})
    made = response.headers["x-request-id"]
    assert made != sent and len(made) == 32 and int(made, 16) >= 0
    assert {r.headers.get("x-request-id") for r in emulator("axim").log.records} == {made}


def test_errors_and_upstream_failures_are_logged_without_secrets(
        emulator_servers: dict[str, RunningEmulator],
        emulator: Callable[[str], RunningEmulator], lines: Lines,
        no_secret_leaks: SecretScan) -> None:
    emulator("axim").faults.set(Fault(status=401))
    with serving(config_for(emulator_servers, defaults=UNCACHED)) as (_, url):
        lines.attach()
        no_secret_leaks.seen(post(url, GROUP_PRODUCTS, headers={"X-Request-ID": "f1"}).text)
        no_secret_leaks.seen(post(url, "{ nope }").text)
    access = lines.objects("gateway.access")
    assert access[0]["errors"] == ["UPSTREAM_UNAUTHORIZED"]
    assert access[0]["outcome"] == "partial" or access[0]["outcome"] == "error"
    assert access[1]["errors"] == ["GRAPHQL_VALIDATION_FAILED"]
    [failure] = lines.objects("gateway.upstream")
    assert (failure["source"], failure["route"], failure["status"], failure["outcome"],
            failure["request_id"], failure["level"]) == (
        "axim", "/productGroup/all", 401, "error", "f1", "warning")
    for text in lines.lines:
        no_secret_leaks.seen(text)
        for running in emulator_servers.values():
            assert running.url not in text


def test_cost_is_only_given_when_asked(gateway_server: RunningGateway,
                                       emulator: Callable[[str], RunningEmulator]) -> None:
    assert "extensions" not in gateway_server.query(GROUP_PRODUCTS)
    body = gateway_server.query(GROUP_PRODUCTS, headers={"X-Gateway-Cost": "1"})
    assert set(body["extensions"]["cost"]) == {"actual", "estimated"}  # type: ignore[index]


def _readme_operations(gateway: RunningGateway) -> list[tuple[str, dict[str, object] | None]]:
    from tests.processes import ROOT

    operations = ROOT / "schema" / "operations"
    cross = (operations / "cross_source_groups.graphql").read_text()
    groups = (operations / "group_products.graphql").read_text()
    refetch = (operations / "node_refetch.graphql").read_text()
    answer: Any = gateway.query(groups)
    group_id = answer["data"]["productGroups"]["nodes"][0]["id"]
    return [(cross, None), (groups, None), (refetch, {"id": group_id})]


def test_cost_matches_the_emulators_request_logs_for_readme_queries(
        gateway_server: RunningGateway, emulator: Callable[[str], RunningEmulator]) -> None:
    operations = _readme_operations(gateway_server)
    assert len(operations) == 3
    for query, variables in operations:
        for kind in KINDS:
            emulator(kind).log.clear()
        body: Any = gateway_server.query(query, variables, headers={"X-Gateway-Cost": "1"})
        assert "errors" not in body, body
        actual = body["extensions"]["cost"]["actual"]
        seen = {kind: len(emulator(kind).log) for kind in KINDS}
        assert sum(seen.values()) > 0
        reported = {kind: actual["sources"].get(kind, {"requests": 0})["requests"]
                    for kind in KINDS}
        assert reported == seen, query
        assert actual["requests"] == sum(seen.values())
        assert actual["cacheHits"] == 0  # the test gateway caches nothing
        for kind, usage in actual["sources"].items():
            assert usage["ms"] > 0 if seen[kind] else usage["ms"] == 0
