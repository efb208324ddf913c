"""``[defaults]``: tuning every source shares, merged under each ``[[sources]]`` entry."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError, SourceTuning, parse_config

# A [server] table whose profile needs no cursor secret: these tests are about [defaults].
DEV = {"profile": "development"}


def sources() -> list[dict[str, Any]]:
    return [
        {"name": "carecloud", "kind": "carecloud", "base_url": "https://cc.example.com",
         "token": "t1"},
        {"name": "joptic", "kind": "joptic", "base_url": "https://joptic.example.com",
         "token": "t2", "timeout_seconds": 2.5, "max_retries": 0},
        {"name": "axim", "kind": "axim", "base_url": "https://axim.example.com", "token": "t3"},
    ]


def error_for(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, origin="gw.toml", environ={})
    return str(caught.value)


def test_a_default_applies_to_every_source() -> None:
    config = parse_config(
        {"defaults": {"breaker_threshold": 9, "stale_grace_seconds": 42.0, "language": "cs"},
         "sources": sources(), "server": DEV},
        environ={})

    assert [s.breaker_threshold for s in config.sources] == [9, 9, 9]
    assert [s.stale_grace_seconds for s in config.sources] == [42.0, 42.0, 42.0]
    assert [s.language for s in config.sources] == ["cs", "cs", "cs"]
    assert config.defaults.breaker_threshold == 9


def test_a_source_key_overrides_the_default() -> None:
    config = parse_config(
        {"defaults": {"timeout_seconds": 7.0, "max_retries": 5}, "sources": sources(),
         "server": DEV},
        environ={})

    assert [s.timeout_seconds for s in config.sources] == [7.0, 2.5, 7.0]
    assert [s.max_retries for s in config.sources] == [5, 0, 5]


def test_without_defaults_each_source_has_the_built_in_tuning() -> None:
    config = parse_config({"sources": sources(), "server": DEV}, environ={})
    built_in = SourceTuning()

    carecloud, joptic, _ = config.sources
    assert carecloud.timeout_seconds == built_in.timeout_seconds
    assert carecloud.cache_ttl_seconds == built_in.cache_ttl_seconds
    assert joptic.timeout_seconds == 2.5


def test_defaults_do_not_change_the_input() -> None:
    data: dict[str, Any] = {"defaults": {"max_retries": 4}, "sources": sources(), "server": DEV}
    parse_config(data, environ={})

    assert "max_retries" not in data["sources"][0]


def test_an_unknown_key_in_defaults_names_defaults() -> None:
    message = error_for({"defaults": {"retries": 3}, "sources": sources(), "server": DEV})

    assert "gw.toml: [defaults] retries: unknown key" in message


def test_an_unknown_key_in_defaults_blames_only_defaults() -> None:
    # Not once again under every entry, which never had the key (fixed in 14651a6).
    message = error_for({"defaults": {"retries": 3}, "sources": sources(), "server": DEV})

    assert message.splitlines() == [
        "gw.toml: [defaults] retries: unknown key (did you mean max_retries?)"]


def test_a_bad_merged_value_names_the_source_entry() -> None:
    message = error_for({"defaults": {"max_retries": 50}, "sources": sources(), "server": DEV})

    assert "gw.toml: [defaults] max_retries: must be at most 10" in message
    assert "gw.toml: [[sources]] #1 (carecloud) max_retries: must be at most 10" in message
    assert "gw.toml: [[sources]] #3 (axim) max_retries: must be at most 10" in message
    # joptic sets its own valid max_retries: the bad default never reaches it.
    assert "joptic" not in message


def test_a_source_own_bad_value_names_it_under_good_defaults() -> None:
    data: dict[str, Any] = {"defaults": {"timezone": "Europe/Prague"}, "sources": sources(),
                            "server": DEV}
    data["sources"][1]["timezone"] = "Mars/Olympus_Mons"
    message = error_for(data)

    assert "gw.toml: [[sources]] #2 (joptic) timezone: unknown time zone" in message
    assert "defaults" not in message
    assert "carecloud" not in message


def test_a_default_cannot_hold_source_identity() -> None:
    message = error_for({"defaults": {"token": "shared-secret"}, "sources": sources(),
                         "server": DEV})

    assert "gw.toml: [defaults] token: unknown key" in message
    assert "shared-secret" not in message
