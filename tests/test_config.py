"""Bad configuration files fail fast with a message naming the file, the entry and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config

GOOD = """
[server]
port = 8080
cors_origins = ["https://shop.example.com"]
cursor_secret = "a-cursor-secret-for-the-tests"

[cache]
url = "memory://"

[[sources]]
name = "carecloud"
kind = "carecloud"
base_url = "https://cc.example.com/rest-api/v1"
token = "s3cret-inline-token"
timezone = "Europe/Prague"

[[sources]]
name = "joptic"
kind = "joptic"
base_url = "https://joptic.example.com"
token_env = "JOPTIC_TOKEN"
timeout_seconds = 5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def error_for(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(
            path, environ={"JOPTIC_TOKEN": "env-token-value"} if environ is None else environ
        )
    message = str(caught.value)
    assert str(path) in message
    return message


def test_good_file_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={"JOPTIC_TOKEN": "env-token-value"})
    assert [s.name for s in config.sources] == ["carecloud", "joptic"]
    assert config.server.port == 8080
    assert config.server.host == "127.0.0.1"
    sources = {s.name: s for s in config.sources}
    assert sources["joptic"].timeout_seconds == 5
    assert sources["carecloud"].timeout_seconds == 10
    assert sources["joptic"].secret({"JOPTIC_TOKEN": "env-token-value"}) == "env-token-value"
    assert sources["carecloud"].secret() == "s3cret-inline-token"
    # A token never shows in a repr.
    assert "s3cret-inline-token" not in repr(config)


def test_unknown_kind(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace('kind = "joptic"', 'kind = "jopticc"'))
    assert 'sources[1] (name "joptic").kind' in message
    assert "carecloud" in message and "comestri" in message


def test_missing_base_url(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace('base_url = "https://joptic.example.com"\n', ""))
    assert 'sources[1] (name "joptic").base_url: Field required' in message


def test_duplicate_name(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace('name = "joptic"', 'name = "carecloud"'))
    assert message.endswith(
        ': sources[1] (name "carecloud").name: duplicate source name \'carecloud\' '
        "(also sources[0])"), message


def test_unset_token_variable_names_the_variable_not_a_value(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD, environ={})
    assert (
        'sources[1] (name "joptic").token_env: environment variable JOPTIC_TOKEN is not set'
        in message
    )


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_or_blank_token_variable(tmp_path: Path, value: str) -> None:
    message = error_for(tmp_path, GOOD, environ={"JOPTIC_TOKEN": value})
    assert message.endswith(
        'sources[1] (name "joptic").token_env: environment variable JOPTIC_TOKEN is empty')


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_or_blank_inline_token_like_an_empty_variable(tmp_path: Path, value: str) -> None:
    message = error_for(tmp_path, GOOD.replace('"s3cret-inline-token"', f'"{value}"'))
    assert message.endswith('sources[0] (name "carecloud").token: the token is empty'), message


def test_no_token_at_all(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace('token_env = "JOPTIC_TOKEN"\n', ""))
    assert 'sources[1] (name "joptic"): no token: give token, or token_env' in message


def test_token_and_token_env_together(tmp_path: Path) -> None:
    text = GOOD.replace(
        'token_env = "JOPTIC_TOKEN"', 'token_env = "JOPTIC_TOKEN"\ntoken = "x-tok-123"'
    )
    message = error_for(tmp_path, text)
    assert "exactly one of token or token_env" in message
    assert "x-tok-123" not in message and "s3cret-inline-token" not in message


def test_unknown_key_is_a_typo_with_a_suggestion(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace("timeout_seconds = 5", "timeout_secs = 5"))
    assert message.endswith(
        ': sources[1] (name "joptic"): unknown key \'timeout_secs\' '
        "(did you mean 'timeout_seconds'?)"), message


def test_unknown_keys_in_sections_and_at_the_top(tmp_path: Path) -> None:
    text = "sourcez = 1\n" + GOOD.replace("port = 8080", "prot = 8080").replace(
        "[cache]", "[defaults]\nbreaker_treshold = 3\nwhatever = 1\n\n[cache]")
    lines = error_for(tmp_path, text).splitlines()
    path = str(tmp_path / "gateway.toml")
    assert f"{path}: server: unknown key 'prot' (did you mean 'port'?)" in lines
    assert f"{path}: defaults: unknown key 'breaker_treshold' (did you mean " \
           "'breaker_threshold'?)" in lines
    assert f"{path}: defaults: unknown key 'whatever'" in lines
    assert f"{path}: unknown key 'sourcez' (did you mean 'sources'?)" in lines
    assert len(lines) == 4, lines  # a [defaults] typo is not repeated under every source


@pytest.mark.parametrize("url", ["joptic.example.com", "ftp://joptic.example.com", "/v1"])
def test_base_url_must_be_absolute_http(tmp_path: Path, url: str) -> None:
    message = error_for(tmp_path, GOOD.replace("https://joptic.example.com", url))
    assert message.endswith(
        ': sources[1] (name "joptic"): base_url must be an absolute http(s) URL'), message


def test_every_problem_in_one_pass(tmp_path: Path) -> None:
    """Field errors, token problems and duplicate names come together, in file order."""
    text = (GOOD.replace("timeout_seconds = 5", "timeout_secs = 5")
            .replace('"s3cret-inline-token"', '" "')
            + '\n[[sources]]\nname = "joptic"\nkind = "joptic"\nbase_url = "http://x"\n')
    lines = error_for(tmp_path, text).splitlines()
    path = str(tmp_path / "gateway.toml")
    assert lines == [
        f'{path}: sources[0] (name "carecloud").token: the token is empty',
        f'{path}: sources[1] (name "joptic"): unknown key \'timeout_secs\' '
        "(did you mean 'timeout_seconds'?)",
        f'{path}: sources[2] (name "joptic"): no token: give token, or token_env naming an '
        "environment variable that holds it",
        f'{path}: sources[2] (name "joptic").name: duplicate source name \'joptic\' '
        "(also sources[1])",
    ]


def test_bad_values_never_echo_a_token(tmp_path: Path) -> None:
    # The token sits where a number is expected: the message names the field, not the value.
    text = GOOD.replace("timeout_seconds = 5", 'timeout_seconds = "s3cret-inline-token"')
    message = error_for(tmp_path, text)
    assert 'sources[1] (name "joptic").timeout_seconds' in message
    assert "s3cret-inline-token" not in message


def test_unknown_timezone_and_cache_scheme(tmp_path: Path) -> None:
    text = GOOD.replace("Europe/Prague", "Mars/Olympus").replace("memory://", "memcached://x")
    message = error_for(tmp_path, text)
    assert "sources[0] (name \"carecloud\").timezone: unknown time zone 'Mars/Olympus'" in message
    assert "cache.url: must start with memory://" in message


def test_cache_byte_bounds(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={"JOPTIC_TOKEN": "env-token-value"})
    assert config.cache.memory_max_bytes == config.cache.decoded_max_bytes == 64 * 2**20
    text = GOOD.replace('url = "memory://"',
                        'url = "memory://"\nmemory_max_bytes = 1000\ndecoded_max_bytes = 0')
    config = load_config(write(tmp_path, text), environ={"JOPTIC_TOKEN": "env-token-value"})
    assert (config.cache.memory_max_bytes, config.cache.decoded_max_bytes) == (1000, 0)
    message = error_for(tmp_path, GOOD.replace('url = "memory://"',
                                               'url = "memory://"\nmemory_max_bytes = -1'))
    assert "cache.memory_max_bytes" in message


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in error_for(tmp_path, "[[sources]\nname=")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_no_sources(tmp_path: Path) -> None:
    assert "sources: Field required" in error_for(tmp_path, "[server]\nport = 1\n")


def test_source_name_rule_in_words(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace('name = "joptic"', 'name = "Joptic"'))
    assert message.endswith(
        'sources[1] (name "Joptic").name: must be a lowercase letter, then up to 62 lowercase '
        "letters, digits, '-' or '_'"), message


def test_a_bad_entry_is_reported_once(tmp_path: Path) -> None:
    only = ('[server]\nprofile = "development"\n'
            '[[sources]]\nname = "cc"\nkind = "carecare"\nbase_url = "http://x"\ntoken = "t"\n')
    message = error_for(tmp_path, only)
    assert 'sources[0] (name "cc").kind' in message
    assert message.count("\n") == 0, message  # no "sources: at least 1 item" echo


def test_cursor_secrets_are_secret_and_long_enough(tmp_path: Path) -> None:
    current, previous = "a-cursor-secret-of-some-length", "the-one-before-this-secret"
    text = GOOD.replace('cursor_secret = "a-cursor-secret-for-the-tests"\n',
                        f'cursor_secret = "{current}"\n'
                        f'previous_cursor_secrets = ["{previous}"]\n')
    config = load_config(write(tmp_path, text), environ={"JOPTIC_TOKEN": "env-token-value"})
    assert config.server.cursor_secret is not None
    assert config.server.cursor_secret.get_secret_value() == current
    assert [s.get_secret_value() for s in config.server.previous_cursor_secrets] == [previous]
    assert current not in repr(config) and previous not in repr(config)
    short = GOOD.replace('cursor_secret = "a-cursor-secret-for-the-tests"\n',
                         'cursor_secret = "sh0rt-secret"\n'
                         'previous_cursor_secrets = ["  ", "0123456789abcdef"]\n')
    message = error_for(tmp_path, short)
    assert "server.cursor_secret: a cursor secret must have at least 16 characters" in message
    assert "server.previous_cursor_secrets" in message
    assert "sh0rt-secret" not in message


def test_languages_and_the_default_language_are_checked(tmp_path: Path) -> None:
    text = GOOD.replace('timezone = "Europe/Prague"',
                        'timezone = "Europe/Prague"\nlanguages = ["cs", "en", "sk"]\n'
                        'language = "sk, en;q=0.5"')
    config = load_config(write(tmp_path, text), environ={"JOPTIC_TOKEN": "env-token-value"})
    assert config.sources[0].languages == ("cs", "en", "sk")
    bad = GOOD.replace('timezone = "Europe/Prague"',
                       'timezone = "Europe/Prague"\nlanguages = ["cs", "en_GB"]\n'
                       'language = "čeština"')
    message = error_for(tmp_path, bad)
    assert "sources[0] (name \"carecloud\").languages: 'en_GB' is not a language tag" in message
    assert "sources[0] (name \"carecloud\").language: the value is not a list of language " \
           "ranges" in message
