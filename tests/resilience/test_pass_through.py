"""Per-client upstream credentials (issue 15): a source's ``pass_through_header`` sends the
client's own token upstream in place of the configured one, and every cache of that source's
data is keyed by it. The emulators accept a tenant token whose answers mark every name, so an
answer shows which credential it was fetched with: two clients with different tokens must never
see each other's data — through the upstream store, the dedup, the group tables or the
whole-response cache, in memory and in Redis.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from gateway.config import Config, parse_config
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS, KINDS
from tests.conftest import RunningEmulator
from tests.leaks import SecretScan

Emulators = dict[str, RunningEmulator]
Json = dict[str, Any]

# CareCloud's list and its group table (node lookups and a NAME order read it whole: CareCloud
# has no get-by-id), and Axim's groups with their products (accessToken, the raw token).
LISTS = """{
  c: productGroups(first: 3, filter: {sources: ["carecloud"]}) { nodes { id name } }
  sorted: productGroups(first: 3, orderBy: {field: NAME}, filter: {sources: ["carecloud"]}) {
    nodes { name } }
  a: productGroups(first: 2, filter: {sources: ["axim"]}) {
    nodes { name products(first: 2) { nodes { name } } } }
  j: productGroups(first: 2, filter: {sources: ["joptic"]}) { nodes { name } }
}"""
NODE = "query($id: ID!) { node(id: $id) { ... on ProductGroup { name } } }"
HEADERS = {"carecloud": "X-CareCloud-Token", "axim": "X-Axim-Token"}


def _config(emulators: Emulators, *, cache_url: str, response_cache: bool) -> Config:
    return parse_config({
        "server": {"profile": "development", "cursor_secret": secrets.token_urlsafe(32)},
        "cache": {"url": cache_url, "namespace": f"t{uuid.uuid4().hex[:10]}"},
        "response_cache": {"enabled": response_cache},
        "sources": [{"name": k, "kind": k, "base_url": emulators[k].url,
                     "token": DEMO_TOKENS[k],
                     **({"pass_through_header": HEADERS[k]} if k in HEADERS else {})}
                    for k in KINDS],
    }, origin="<test>")


@contextmanager
def _gateway(config: Config) -> Iterator[str]:
    with ServerThread({"gw": create_app(config)}) as servers:
        yield servers.urls["gw"]


def _names(data: Json) -> list[str]:
    """Every name in an answer."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "name" and isinstance(item, str):
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(data)
    return found


@pytest.fixture
def emulators(emulator_servers: Emulators,
              emulator: Callable[[str], RunningEmulator]) -> Emulators:
    return emulator_servers


@pytest.mark.parametrize(("cache", "response_cache"), [
    ("memory", False), ("memory", True), ("redis", True)])
def test_clients_with_different_tokens_never_see_each_others_cached_data(
        emulators: Emulators, no_secret_leaks: SecretScan, redis_url: str, cache: str,
        response_cache: bool) -> None:
    scan = no_secret_leaks
    tenants = {"b": "tenant-b-" + secrets.token_hex(8), "c": "tenant-c-" + secrets.token_hex(8)}
    for client, token in tenants.items():
        scan.add_secret(token)
        for kind in HEADERS:
            emulators[kind].tenants.add(token, f"[{client}]")
    clients: dict[str, dict[str, str]] = {
        "a": {},  # the configured tokens
        **{c: {h: t for h in HEADERS.values()} for c, t in tenants.items()}}
    url = redis_url if cache == "redis" else "memory://"
    with _gateway(_config(emulators, cache_url=url, response_cache=response_cache)) as gw:

        def ask(client: str, query: str, variables: Json | None = None) -> Json:
            response = httpx.post(f"{gw}/graphql", json={"query": query, "variables": variables},
                                  headers=clients[client], timeout=30)
            scan.seen(response.text)
            body: Json = response.json()
            assert "errors" not in body, body
            data: Json = body["data"]
            return data

        def check(client: str, data: Json) -> None:
            names = _names(data)
            assert names
            for other in ("b", "c"):
                marked = [n for n in names if n.endswith(f" [{other}]")]
                if other == client:  # every CareCloud and Axim name is this client's
                    assert len(marked) == len(names) - len(data["j"]["nodes"]) \
                        if "j" in data else len(marked) == len(names), names
                else:
                    assert not marked, (client, names)
            if "j" in data:  # Joptic passes nothing through: the same for everyone
                assert not any(n.endswith("]") for n in _names(data["j"]))

        rounds = [{c: ask(c, LISTS) for c in ("a", "b", "c")}]
        cold = sum(len(e.log) for e in emulators.values())
        rounds.append({c: ask(c, LISTS) for c in ("a", "b", "c")})
        assert sum(len(e.log) for e in emulators.values()) == cold  # warm for every client
        for answers in rounds:
            for client, data in answers.items():
                check(client, data)
        assert rounds[0] == rounds[1]
        group = rounds[0]["a"]["c"]["nodes"][0]["id"]
        for client in ("b", "a", "c", "b"):  # the group table, kept per credential
            check(client, ask(client, NODE, {"id": group}))

        # The tenants' requests went upstream with their own tokens, the others with the
        # configured ones; a warm second round asked no source again.
        sent = {kind: [r.headers.get("accesstoken") or r.headers.get("authorization", "")
                       for r in emulators[kind].log.records] for kind in HEADERS}
        for kind, headers in sent.items():
            for token in (*tenants.values(), DEMO_TOKENS[kind]):
                assert any(h.endswith(token) for h in headers), (kind, token)


def test_a_pass_through_header_must_be_a_token(emulators: Emulators,
                                               no_secret_leaks: SecretScan) -> None:
    with _gateway(_config(emulators, cache_url="memory://", response_cache=False)) as gw:
        response = httpx.post(f"{gw}/graphql", json={"query": "{ sources { id } }"},
                              headers={"X-CareCloud-Token": "two words"}, timeout=30)
        no_secret_leaks.seen(response.text)
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "two words" not in response.text
