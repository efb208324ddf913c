"""A warm cache is the same whatever order it was warmed in: a cold burst of 32 concurrent
identical queries leaves exactly the state one query at a time leaves (one upstream call, one
cache entry, one decoded and parsed answer per distinct upstream request), so warm queries then
cost the same (the benchmark's warm rows measure that cost)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from gateway.config import CacheSettings, Config, ResponseCacheSettings
from gateway.demo import demo_config
from gateway.edge.app import GatewayApp, create_app
from gateway.edge.serving import ServerThread
from tests.conftest import RunningEmulator

Emulators = dict[str, RunningEmulator]
MAIN = """{ productGroups(first: 20, filter: {sources: ["axim"]}) {
  nodes { name products(first: 5) { totalCount nodes { name sku variants { sku } } } } } }"""


def config_for(emulators: Emulators) -> Config:
    config = demo_config({kind: e.url for kind, e in emulators.items()})
    return config.model_copy(update={
        "cache": CacheSettings(namespace=f"t{uuid.uuid4().hex[:12]}"),
        "response_cache": ResponseCacheSettings(enabled=False)})


def memo_sizes(app: GatewayApp) -> tuple[int, int]:
    """Decoded answers and parsed readings the process keeps (one memo for every source)."""
    kinds = Counter(key[0] for key in app.state.runtime.adapters["axim"].client.memo.keys())  # noqa: SIM118
    return kinds["json"], kinds["parsed"]


async def warm(url: str, concurrency: int, rounds: int) -> list[bytes]:
    async with httpx.AsyncClient(timeout=60) as client:
        answers: list[bytes] = []
        for _ in range(rounds):
            replies = await asyncio.gather(*(client.post(url, json={"query": MAIN})
                                             for _ in range(concurrency)))
            answers += [r.content for r in replies]
        return answers


@pytest.mark.parametrize(("concurrency", "rounds"), [(32, 1), (1, 32)],
                         ids=["cold-burst", "one-at-a-time"])
def test_warming_order_leaves_the_same_state(emulator_servers: Emulators, emulator: Any,
                                             concurrency: int, rounds: int) -> None:
    app = create_app(config_for(emulator_servers))
    axim = emulator_servers["axim"]
    with ServerThread({"gw": app}) as servers:
        answers = asyncio.run(warm(servers.urls["gw"] + "/graphql", concurrency, rounds))
        assert len(set(answers)) == 1 and b'"errors"' not in answers[0]
        assert len(axim.log) == 1  # the burst shared one upstream call
        assert memo_sizes(app) == (0, 1)  # one typed reading, no JSON decode
        axim.log.clear()
        asyncio.run(warm(servers.urls["gw"] + "/graphql", 4, 2))
        assert len(axim.log) == 0
        assert memo_sizes(app) == (0, 1)  # warm queries read the same entry
