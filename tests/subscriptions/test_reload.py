"""A reload in a running gateway (``GatewayApp.reload``, what SIGHUP runs; the signal itself is
tested on ``serve`` in ``tests/edge/test_serve_reload.py``): subscriptions to the sources kept
go on, one naming a removed source ends with ``SOURCE_REMOVED``; a file that fails the checks
is refused, logged, and the running configuration serves on."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

import httpx

from gateway.config import Config, fingerprint
from tests.helpers import error_codes
from tests.leaks import CONFIGURED, SessionLog
from tests.subscriptions.conftest import (
    GROUP_CHANGES,
    Emulators,
    Gateway,
    event,
    gateway_config,
    running,
    sse,
)


def sources(gateway: Gateway) -> list[str]:
    body = httpx.post(gateway.graphql_url, json={"query": "{ sources { id } }"}).json()
    return [source["id"] for source in body["data"]["sources"]]


def without(config: Config, name: str) -> Config:
    return config.model_copy(update={"sources": tuple(s for s in config.sources
                                                      if s.name != name)})


def reload(gateway: Gateway, config: Config | None = None) -> bool:
    applied: bool = gateway.servers.run(gateway.app.reload(config))
    return applied


def test_a_reload_keeps_subscriptions_to_kept_sources_and_ends_those_to_removed_ones(
        emulator_servers: Emulators) -> None:
    config = gateway_config(emulator_servers)
    with running(config) as gateway:
        joptic = gateway.groups("joptic")[0]
        kept_filter: dict[str, Any] = {"filter": {"sources": ["joptic"]}}
        removed_filter: dict[str, Any] = {"filter": {"sources": ["axim"]}}
        with sse(gateway, GROUP_CHANGES, variables=kept_filter) as kept, \
                sse(gateway, GROUP_CHANGES, variables=removed_filter) as removed:
            gateway.wait_subscribers(2)
            assert reload(gateway, without(config, "axim"))
            ended = next(removed)
            assert error_codes(json.loads(ended.data)["errors"]) == ["SOURCE_REMOVED"]
            assert next(removed).event == "complete"
            gateway.wait_subscribers(1)
            [announced] = gateway.announce(event(joptic))
            heard = next(kept)  # on the stream opened before the reload
            assert heard.id == announced
        assert sources(gateway) == ["carecloud", "joptic", "comestri"]
        # A new subscription meets the new configuration.
        with sse(gateway, GROUP_CHANGES, variables=removed_filter) as refused:
            assert error_codes(json.loads(next(refused).data)["errors"]) == ["BAD_USER_INPUT"]


def test_a_source_added_by_a_reload_is_queried_and_watched(emulator_servers: Emulators) -> None:
    full = gateway_config(emulator_servers)
    with running(without(full, "joptic")) as gateway:
        assert "joptic" not in sources(gateway)
        assert reload(gateway, full)
        assert sources(gateway) == ["carecloud", "joptic", "axim", "comestri"]
        group = gateway.groups("joptic")[0]
        with sse(gateway, GROUP_CHANGES, variables={"filter": {"sources": ["joptic"]}}) as events:
            gateway.wait_subscribers(1)
            [announced] = gateway.announce(event(group))
            assert next(events).id == announced


def test_a_file_that_fails_the_checks_is_refused_and_the_running_configuration_stays(
        emulator_servers: Emulators, tmp_path: Path, session_log: SessionLog) -> None:
    broken = tmp_path / "gateway.toml"
    broken.write_text('[server]\nprot = 8001\n[[sources]]\nname = "a"\nkind = "joptic"\n'
                      'base_url = "http://127.0.0.1:9"\ntoken = "t"\n')
    with running(gateway_config(emulator_servers, metrics={"enabled": True})) as gateway:
        gateway.app.config_path = broken
        _, start = session_log.since(0)
        assert not reload(gateway)
        logged, _ = session_log.since(start)
        refused = [line for line in logged if "reload refused" in line]
        assert refused and "[server] prot: unknown key (did you mean port?)" in refused[0], \
            logged  # check-config's own message
        assert sources(gateway) == ["carecloud", "joptic", "axim", "comestri"]
        assert reload(gateway, gateway.app.state.config)  # the same again: applied
        metrics = httpx.get(f"{gateway.url}/metrics").text
        assert 'gateway_config_reloads_total{outcome="refused"} 1.0' in metrics
        assert 'gateway_config_reloads_total{outcome="applied"} 1.0' in metrics


def test_what_needs_a_restart_is_named_when_a_reload_changes_it(
        emulator_servers: Emulators, session_log: SessionLog) -> None:
    config = gateway_config(emulator_servers)
    moved = config.model_copy(update={"server": config.server.model_copy(
        update={"port": config.server.port + 1, "max_body_bytes": 5_000})})
    with running(config) as gateway:
        _, start = session_log.since(0)
        assert reload(gateway, moved)
        logged, _ = session_log.since(start)
        assert any("server.port changed but takes effect at the next restart" in line
                   for line in logged), logged
        too_large = httpx.post(gateway.graphql_url, json={"query": "{ sources { id } }",
                                                          "pad": "x" * 6_000})
        assert too_large.status_code == 413  # the rest of [server] applies at once


def test_shared_cache_entries_are_keyed_by_the_whole_configuration_secrets_included(
        emulator_servers: Emulators) -> None:
    config = gateway_config(emulator_servers)
    rotated = config.model_copy(update={"sources": (
        config.sources[0].model_copy(update={"token": "another-token"}), *config.sources[1:])})
    assert fingerprint(config) == fingerprint(config.model_copy())
    assert fingerprint(config) != fingerprint(rotated)
    assert fingerprint(config) != fingerprint(without(config, "axim"))


def test_a_key_a_reload_removes_ends_the_subscriptions_it_opened(
        emulator_servers: Emulators) -> None:
    keys = {"kept": "ak_" + secrets.token_urlsafe(24), "revoked": "ak_" + secrets.token_urlsafe(24)}
    CONFIGURED.update(keys.values())

    def auth(*clients: str) -> dict[str, Any]:
        return {"required": True, "api_keys": [
            {"client": c, "sha256": hashlib.sha256(keys[c].encode()).hexdigest()}
            for c in clients]}

    config = gateway_config(emulator_servers, auth=auth("kept", "revoked"))
    with running(config) as gateway:
        group = gateway.groups("joptic")[0]
        with sse(gateway, GROUP_CHANGES, headers={"X-API-Key": keys["kept"]}) as kept, \
                sse(gateway, GROUP_CHANGES, headers={"X-API-Key": keys["revoked"]}) as revoked:
            gateway.wait_subscribers(2)
            rotated = gateway_config(emulator_servers, auth=auth("kept"))
            assert reload(gateway, rotated)
            [announced] = gateway.announce(event(group))
            assert next(kept).id == announced
            ended = json.loads(next(revoked).data)
            assert error_codes(ended["errors"]) == ["UNAUTHENTICATED"]
            assert "no longer valid" in ended["errors"][0]["message"]


def test_rate_limit_windows_in_memory_go_on_across_a_reload(emulator_servers: Emulators) -> None:
    config = gateway_config(emulator_servers, rate_limits={"requests_per_minute": 3})
    with running(config) as gateway:
        def status() -> int:
            return httpx.post(gateway.graphql_url, json={"query": "{ sources { id } }"}
                              ).status_code

        assert [status(), status()] == [200, 200]
        changed = gateway_config(emulator_servers, rate_limits={"requests_per_minute": 3},
                                 limits={"max_aliases": 20})
        assert reload(gateway, changed)
        assert [status(), status()] == [200, 429]  # the minute was not handed out afresh
