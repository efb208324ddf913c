"""Helpers of the observability tests: a gateway over the session's emulators, and /metrics read
back as numbers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Config
from gateway.demo import demo_config
from gateway.edge.app import GatewayApp, create_app
from gateway.edge.serving import ServerThread
from gateway.observability.tracing import Tracing
from tests.conftest import RunningEmulator

__all__ = ["CACHED", "CROSS", "GROUP_PRODUCTS", "PRODUCTS", "Samples", "config_for", "scrape",
           "serving"]

# Caches on (the demo's TTLs), quick retries, a breaker one test's faults cannot open.
CACHED = {"retry_backoff_seconds": 0.01, "breaker_threshold": 1000}
# Operations the observability tests ask, each of a name of its own.
CROSS = ('query CrossSourceGroups { productGroups(first: 4, orderBy: {field: NAME}, '
         'filter: {search: "office"}) { totalCount nodes { id name source { id } } } }')
GROUP_PRODUCTS = ('query GroupsWithProducts { productGroups(first: 2, filter: {sources: ["axim"]})'
                  ' { nodes { id name products(first: 2) { totalCount nodes { name sku } } } } }')
PRODUCTS = "query Products { products(first: 3) { nodes { sku } } }"


def config_for(emulators: Mapping[str, RunningEmulator], *, defaults: Mapping[str, Any],
               response_cache: bool = False, **sections: Mapping[str, Any]) -> Config:
    """The demo's configuration over the session's emulators, ``sections`` updated by key."""
    config = demo_config({kind: e.url for kind, e in emulators.items()}, defaults=defaults)
    update: dict[str, Any] = {"response_cache": config.response_cache.model_copy(
        update={"enabled": response_cache})}
    for name, values in sections.items():
        update[name] = getattr(config, name).model_copy(update=dict(values))
    return config.model_copy(update=update)


@contextmanager
def serving(config: Config, tracing: Tracing | None = None) -> Iterator[tuple[GatewayApp, str]]:
    app = create_app(config, tracing=tracing)
    with ServerThread({"gw": app}) as servers:
        yield app, servers.urls["gw"]


class Samples:
    """The samples of one scrape."""

    def __init__(self, text: str) -> None:
        self.samples = [(s.name, s.labels, s.value) for family in
                        text_string_to_metric_families(text) for s in family.samples]

    def total(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``."""
        return sum(value for sample, have, value in self.samples
                   if sample == name and all(have.get(k) == v for k, v in labels.items()))

    def labels(self, name: str, label: str) -> set[str]:
        return {have[label] for sample, have, _ in self.samples if sample == name}


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Samples(response.text)
