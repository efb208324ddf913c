"""Helpers and upstream reference data for the end-to-end GraphQL tests.

Expected values are read straight from the emulators with plain httpx clients (never through the
gateway's adapters), so a misreading in an adapter cannot hide in the expectation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.config import Config, LimitSettings
from gateway.demo import demo_config
from gateway.emulators.common import RecordedRequest
from tests.conftest import UNCACHED, RunningEmulator, RunningGateway

Emulators = dict[str, RunningEmulator]
SOURCES = ("carecloud", "joptic", "axim", "comestri")  # configuration order
TOKENS = ("demo-carecloud-token", "demo-joptic-token", "demo-axim-token", "demo-comestri-token")
JOPTIC_ORDER = {"sortBy": "createdAt", "sortOrder": "desc"}


def clear_logs(emulators: Emulators) -> None:
    for running in emulators.values():
        running.log.clear()


def upstream_requests(emulators: Emulators) -> int:
    return sum(len(running.log.records) for running in emulators.values())


def requests_of(emulators: Emulators) -> dict[str, list[RecordedRequest]]:
    return {kind: running.log.records for kind, running in emulators.items()}


def set_latency(emulators: Emulators, latency_ms: int) -> None:
    for running in emulators.values():
        if latency_ms:
            running.faults.set(latency_ms=latency_ms)
        else:
            running.faults.clear()


def limits_config(emulators: Emulators, **limits: Any) -> Config:
    """The demo's configuration over ``emulators``, caches and the access log off, with these
    ``[limits]``."""
    base = demo_config({kind: e.url for kind, e in emulators.items()}, defaults=UNCACHED)
    return base.model_copy(update={
        "server": base.server.model_copy(update={"access_log": False}),
        "limits": LimitSettings(**limits)})


def data_of(body: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of an answer that must have no errors."""
    assert body.get("errors") is None, body.get("errors")
    data: dict[str, Any] = body["data"]
    return data


def ask(gateway: RunningGateway, query: str, variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The whole JSON answer (``data`` and ``errors``) of one GraphQL request."""
    return dict(gateway.query(query, variables, headers))


def run(gateway: RunningGateway, query: str, variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None) -> dict[str, Any]:
    return data_of(ask(gateway, query, variables, headers))


# -- upstream reference data (read once per session, before any measured request) -------------


def carecloud_groups(running: RunningEmulator, language: str | None = None
                     ) -> list[dict[str, Any]]:
    """Every CareCloud group in the order the adapter asks for (product_group_id ascending)."""
    headers = {"Accept-Language": language} if language else {}
    with running.client() as client:
        response = client.get("/product-groups", headers=headers, params={
            "count": 1000, "sort_field": "product_group_id", "sort_direction": "asc"})
        response.raise_for_status()
        data = response.json()["data"]
    groups: list[dict[str, Any]] = data["product_groups"]
    assert len(groups) == data["total_items"]
    return groups


def joptic_pages(running: RunningEmulator) -> tuple[list[dict[str, Any]], int]:
    """Every Joptic group in the adapter's order (createdAt desc), and the upstream's total."""
    rows: list[dict[str, Any]] = []
    with running.client() as client:
        first = client.get("/product-groups", params={**JOPTIC_ORDER, "page": 1, "limit": 100})
        total: int = first.json()["pagination"]["total"]
        rows += first.json()["data"]
        for page in range(2, math.ceil(total / 100) + 1):
            rows += client.get("/product-groups", params={
                **JOPTIC_ORDER, "page": page, "limit": 100}).json()["data"]
    assert len(rows) == total
    return rows, total


def axim_groups(running: RunningEmulator) -> list[dict[str, Any]]:
    """Every Axim group in its default order."""
    rows: list[dict[str, Any]] = []
    with running.client() as client:
        page = 1
        while True:
            body = client.get("/productGroup/all", params={
                "page": page, "limit": 50, "productLimit": 1}).json()
            rows += body["data"]
            if len(rows) >= body["pagination"]["total"]:
                return rows
            page += 1


@pytest.fixture(scope="session")
def upstream(emulator_servers: Emulators) -> dict[str, list[dict[str, Any]]]:
    """The three group sources' whole data sets, keyed by source, in each adapter's order."""
    joptic, _ = joptic_pages(emulator_servers["joptic"])
    return {
        "carecloud": carecloud_groups(emulator_servers["carecloud"]),
        "joptic": joptic,
        "axim": axim_groups(emulator_servers["axim"]),
    }


@pytest.fixture
def emulators(emulator_servers: Emulators, emulator: Any) -> Iterator[Emulators]:
    """The running emulators with clean logs and no faults (cleared again afterwards)."""
    yield emulator_servers
