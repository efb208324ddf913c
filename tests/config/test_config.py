"""Bad configuration files fail fast with a message naming the file, the entry and the field."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from gateway.config import ConfigError, config_warnings, load_config
from gateway.config.placeholders import weakness

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
    assert ("[[sources]] #2 (joptic) kind: must be one of carecloud, joptic, axim, comestri"
            in message)


def test_missing_base_url(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace('base_url = "https://joptic.example.com"\n', ""))
    assert "[[sources]] #2 (joptic) base_url: missing: this key is required" in message


def test_duplicate_name(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace('name = "joptic"', 'name = "carecloud"'))
    assert message.endswith(
        ": [[sources]] #2 (carecloud) name: duplicate source name 'carecloud' "
        "(also [[sources]] #1)"), message


def test_unset_token_variable_names_the_variable_not_a_value(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD, environ={})
    assert message.endswith(
        "[[sources]] #2 (joptic) token_env: environment variable JOPTIC_TOKEN is not set: "
        "export JOPTIC_TOKEN=… with this source's token"), message


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_or_blank_token_variable(tmp_path: Path, value: str) -> None:
    message = error_for(tmp_path, GOOD, environ={"JOPTIC_TOKEN": value})
    assert message.endswith(
        "[[sources]] #2 (joptic) token_env: environment variable JOPTIC_TOKEN is empty: "
        "export JOPTIC_TOKEN=… with this source's token"), message


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_or_blank_inline_token_like_an_empty_variable(tmp_path: Path, value: str) -> None:
    message = error_for(tmp_path, GOOD.replace('"s3cret-inline-token"', f'"{value}"'))
    assert message.endswith("[[sources]] #1 (carecloud) token: the token is empty"), message


def test_no_token_at_all(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace('token_env = "JOPTIC_TOKEN"\n', ""))
    assert "[[sources]] #2 (joptic): no token: give token_env" in message


def test_token_and_token_env_together(tmp_path: Path) -> None:
    text = GOOD.replace(
        'token_env = "JOPTIC_TOKEN"', 'token_env = "JOPTIC_TOKEN"\ntoken = "x-tok-123"'
    )
    message = error_for(tmp_path, text)
    assert "[[sources]] #2 (joptic): give exactly one of token and token_env" in message
    assert "x-tok-123" not in message and "s3cret-inline-token" not in message


def test_unknown_key_is_a_typo_with_a_suggestion(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace("timeout_seconds = 5", "timeout_secs = 5"))
    assert message.endswith(
        ": [[sources]] #2 (joptic) timeout_secs: unknown key (did you mean timeout_seconds?)"
    ), message


def test_unknown_keys_in_sections_and_at_the_top(tmp_path: Path) -> None:
    text = "sourcez = 1\n" + GOOD.replace("port = 8080", "prot = 8080").replace(
        "[cache]", "[defaults]\nbreaker_treshold = 3\nwhatever = 1\n\n[cache]")
    lines = error_for(tmp_path, text).splitlines()
    path = str(tmp_path / "gateway.toml")
    assert f"{path}: [server] prot: unknown key (did you mean port?)" in lines
    assert f"{path}: [defaults] breaker_treshold: unknown key (did you mean " \
           "breaker_threshold?)" in lines
    assert f"{path}: [defaults] whatever: unknown key" in lines
    assert f"{path}: sourcez: unknown key (did you mean sources?)" in lines
    assert len(lines) == 4, lines  # a [defaults] typo is not repeated under every source


@pytest.mark.parametrize("url", ["joptic.example.com", "ftp://joptic.example.com", "/v1"])
def test_base_url_must_be_absolute_http(tmp_path: Path, url: str) -> None:
    message = error_for(tmp_path, GOOD.replace("https://joptic.example.com", url))
    assert message.endswith(
        ": [[sources]] #2 (joptic) base_url: must be an absolute http(s) URL"), message


def test_every_problem_in_one_pass(tmp_path: Path) -> None:
    """Field errors, token problems and duplicate names come together, in file order."""
    text = (GOOD.replace("timeout_seconds = 5", "timeout_secs = 5")
            .replace('"s3cret-inline-token"', '" "')
            + '\n[[sources]]\nname = "joptic"\nkind = "joptic"\nbase_url = "http://x"\n')
    lines = error_for(tmp_path, text).splitlines()
    path = str(tmp_path / "gateway.toml")
    assert lines == [
        f"{path}: [[sources]] #1 (carecloud) token: the token is empty",
        f"{path}: [[sources]] #2 (joptic) timeout_secs: unknown key "
        "(did you mean timeout_seconds?)",
        f"{path}: [[sources]] #3 (joptic): no token: give token_env, naming an environment "
        "variable that holds it, or token",
        f"{path}: [[sources]] #3 (joptic) name: duplicate source name 'joptic' "
        "(also [[sources]] #2)",
    ]


def test_bad_values_never_echo_a_token(tmp_path: Path) -> None:
    # The token sits where a number is expected: the message names the field, not the value.
    text = GOOD.replace("timeout_seconds = 5", 'timeout_seconds = "s3cret-inline-token"')
    message = error_for(tmp_path, text)
    assert "[[sources]] #2 (joptic) timeout_seconds: must be a number" in message
    assert "s3cret-inline-token" not in message


def test_unknown_timezone_and_cache_scheme(tmp_path: Path) -> None:
    text = GOOD.replace("Europe/Prague", "Mars/Olympus").replace("memory://", "memcached://x")
    message = error_for(tmp_path, text)
    assert "[[sources]] #1 (carecloud) timezone: unknown time zone 'Mars/Olympus'" in message
    assert "[cache] url: must start with memory://" in message


def test_cache_byte_bounds(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={"JOPTIC_TOKEN": "env-token-value"})
    assert config.cache.memory_max_bytes == config.cache.decoded_max_bytes == 64 * 2**20
    text = GOOD.replace('url = "memory://"',
                        'url = "memory://"\nmemory_max_bytes = 1000\ndecoded_max_bytes = 0')
    config = load_config(write(tmp_path, text), environ={"JOPTIC_TOKEN": "env-token-value"})
    assert (config.cache.memory_max_bytes, config.cache.decoded_max_bytes) == (1000, 0)
    message = error_for(tmp_path, GOOD.replace('url = "memory://"',
                                               'url = "memory://"\nmemory_max_bytes = -1'))
    assert "[cache] memory_max_bytes: must be at least 0" in message


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    assert error_for(tmp_path, "[[sources]\nname=") == (
        f"{path}, line 1, column 10: a [[table]] header needs its closing ]]")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


@pytest.mark.parametrize(("text", "problem"), [
    # tomllib: "Cannot overwrite a value (at line 5, column 30)", naming no key.
    ('[server]\ncursor_secret = "a-cursor-secret-for-the-tests"\nport = 1\n\n'
     'cursor_secret = "another-secret-for-the-tests"\n',
     "line 5, column 1: [server] cursor_secret: set twice (first on line 2): keep one of them"),
    ('[[sources]]\nname = "cc"\n[[sources]]\nname = "jo"\nkind = "joptic"\n  kind = "axim"',
     "line 6, column 3: [[sources]] #2 (jo) kind: set twice (first on line 5): keep one of them"),
    ("[rate_limits]\nclients = { shop = 1, shop = 2 }\n",
     "line 2, column 31: [rate_limits] clients: shop is set twice in one inline table"),
    ("[server]\nport = 1\n[cache]\n[server]\n",
     "line 4, column 1: [server]: declared twice (first on line 1): put its keys under one "
     "[server]"),
    ('[server]\nprofile = production\n', 'line 2, column 11: a string needs quotes: "production"'),
    ("[server]\ngraphiql = True\n", "line 2, column 12: write true: TOML's booleans are lowercase"),
    ('[server]\ncors_origins = ["https://a.example.com",\n  "https://b.example.com"\n'
     '[cache]\n', "line 4, column 1: a list [ … ] is not closed: a ']', or a ',' between items, "
                  "is missing"),
    ('[server]\ncors_origin_regex = "^http://localhost(:\\d+)?$"\n',
     "line 2, column 41: a \\ in a \"…\" string starts an escape: write \\\\, or use a '…' "
     "string, which has no escapes"),
    ('[server]\ncursor_secret = "unclosed\nport = 1\n',
     "line 2, column 26: a string is not closed on its line: it needs its closing quote"),
])
def test_not_toml_says_the_line_the_column_and_what_in_plain_words(
        tmp_path: Path, text: str, problem: str) -> None:
    assert error_for(tmp_path, text) == f"{tmp_path / 'gateway.toml'}, {problem}"


def test_no_sources(tmp_path: Path) -> None:
    assert (": [[sources]]: missing: give at least one [[sources]] entry (name, kind, base_url "
            "and token_env)") in error_for(tmp_path, "[server]\nport = 1\n")


def test_source_name_rule_in_words(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace('name = "joptic"', 'name = "Joptic"'))
    assert message.endswith(
        "[[sources]] #2 (Joptic) name: must be a lowercase letter, then up to 62 lowercase "
        "letters, digits, '-' or '_'"), message


def test_a_bad_entry_is_reported_once(tmp_path: Path) -> None:
    only = ('[server]\nprofile = "development"\n'
            '[[sources]]\nname = "cc"\nkind = "carecare"\nbase_url = "http://x"\ntoken = "t"\n')
    message = error_for(tmp_path, only)
    assert "[[sources]] #1 (cc) kind" in message
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
    assert "[server] cursor_secret: a cursor secret must have at least 16 characters" in message
    assert "[server] previous_cursor_secrets: a cursor secret must have" in message
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
    assert "[[sources]] #1 (carecloud) languages: 'en_GB' is not a language tag" in message
    assert "[[sources]] #1 (carecloud) language: the value is not a list of language " \
           "ranges" in message


def test_common_errors_are_in_the_projects_words_and_location_style(tmp_path: Path) -> None:
    """Missing, wrong type, not one of, out of range, unknown key, pattern, too short: each says
    where as the file does ([table] key, [[sources]] #n (name) key) and what, never pydantic's
    words or its dotted locations."""
    text = """
[server]
profile = "staging"
port = 70000
cors_origins = "https://shop.example.com"
cursor_secret = "a-cursor-secret-for-the-tests"
prot = 1

[servr]
port = 1

[cache]
namespace = "has spaces"

[auth]
api_keys = [{ client = "shop", sha256 = "the-key" }]

[auth.jwt]
algorithms = []
jwks_url = "login.example.com"

[rate_limits]
clients = { shop = { requests_per_minute = -1 } }

[[sources]]
name = "carecloud"
kind = "carecare"
base_url = "https://cc.example.com"
token = "s3cret-inline-token"
max_retries = 2.5
dedup = "sometimes"
languages = []

[[sources]]
kind = "joptic"
token_env = "JOPTIC_TOKEN"
"""
    lines = error_for(tmp_path, text).splitlines()
    path = tmp_path / "gateway.toml"
    assert lines == [f"{path}: {line}" for line in [
        "[server] profile: must be one of production, development",
        "[server] port: must be at most 65535",
        "[server] cors_origins: must be a list: [ … ]",
        "[server] prot: unknown key (did you mean port?)",
        "[cache] namespace: must be 1 to 40 letters, digits, '.', '-' or '_'",
        "[auth] api_keys #1 sha256: must be the key's SHA-256, 64 lowercase hex digits "
        "(`printf %s KEY | sha256sum`), not the key",
        "[auth.jwt] algorithms: must have at least 1 item",
        "[auth.jwt] jwks_url: must be an absolute http(s) URL",
        "[rate_limits] clients.shop.requests_per_minute: must be at least 0",
        "[servr]: unknown table (did you mean [server]?)",
        "[[sources]] #1 (carecloud) max_retries: must be a whole number",
        "[[sources]] #1 (carecloud) dedup: must be true or false",
        "[[sources]] #1 (carecloud) kind: must be one of carecloud, joptic, axim, comestri",
        "[[sources]] #1 (carecloud) languages: must have at least 1 item",
        "[[sources]] #2 name: missing: this key is required",
        "[[sources]] #2 base_url: missing: this key is required",
    ]]


@pytest.mark.parametrize("secret", [
    "replace-me-with-the-output-of-the-command-above",  # the example configurations' own
    "change-me-change-me-change-me", "<generate one>", "…", "xxxxxxxxxxxxxxxxxxxxxxxx",
    "secretsecretsecret", "your-256-bit-secret", "1234567890123456"])
def test_a_placeholder_or_famous_cursor_secret_is_refused(tmp_path: Path, secret: str) -> None:
    message = error_for(tmp_path, GOOD.replace("a-cursor-secret-for-the-tests", secret))
    assert f"{tmp_path / 'gateway.toml'}: [server] cursor_secret: " in message
    assert ("generate one, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            in message)
    assert secret not in message or secret == "…"


def test_made_up_secrets_of_some_length_and_random_ones_pass() -> None:
    for secret in ("a-cursor-secret-for-the-tests", "s3cret-cursor-key-0123",
                   "memory-test-secret-0123456789abcdef", "heavy-requests-secret-0123456789",
                   secrets.token_urlsafe(32), secrets.token_hex(16)):
        assert weakness(secret) is None, secret


def test_placeholder_tokens_and_jwt_secrets_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace('"s3cret-inline-token"', '"${CARECLOUD_TOKEN}"') + (
        '\n[auth.jwt]\nalgorithms = ["HS256"]\nsecret = "your-256-bit-secret-your-256-bit"\n')
    lines = error_for(tmp_path, text, {"JOPTIC_TOKEN": "<the joptic token>"}).splitlines()
    path = tmp_path / "gateway.toml"
    assert lines == [
        f"{path}: [auth.jwt] secret: is a well-known weak value: generate one, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
        f"{path}: [[sources]] #1 (carecloud) token: is not expanded: TOML has no variables "
        "(name the variable in a *_env key instead), not a token: put the source's token in an "
        "environment variable, and its name in token_env",
        f"{path}: [[sources]] #2 (joptic) token_env: the value of JOPTIC_TOKEN looks like a "
        "placeholder: export JOPTIC_TOKEN=… with this source's token",
    ]


def test_the_cursor_secret_can_come_from_the_environment(tmp_path: Path) -> None:
    text = GOOD.replace('cursor_secret = "a-cursor-secret-for-the-tests"',
                        'cursor_secret_env = "GATEWAY_CURSOR_SECRET"')
    secret = secrets.token_urlsafe(32)
    config = load_config(write(tmp_path, text),
                         environ={"JOPTIC_TOKEN": "env-token-value",
                                  "GATEWAY_CURSOR_SECRET": secret})
    assert config.server.cursor_secret is not None
    assert config.server.cursor_secret.get_secret_value() == secret
    path = tmp_path / "gateway.toml"
    for value, problem in [
            (None, "environment variable GATEWAY_CURSOR_SECRET is not set"),
            ("short", "the secret in GATEWAY_CURSOR_SECRET must have at least 16 characters"),
            ("replace-me-with-a-real-secret", "the value of GATEWAY_CURSOR_SECRET looks like a "
                                              "placeholder")]:
        environ = {"JOPTIC_TOKEN": "env-token-value"}
        if value is not None:
            environ["GATEWAY_CURSOR_SECRET"] = value
        assert error_for(tmp_path, text, environ) == (
            f"{path}: [server] cursor_secret_env: {problem}: export GATEWAY_CURSOR_SECRET="
            "\"$(python -c 'import secrets; print(secrets.token_urlsafe(32))')\"")
    both = text.replace("[server]", '[server]\ncursor_secret = "a-cursor-secret-for-the-tests"')
    assert error_for(tmp_path, both, {"JOPTIC_TOKEN": "t", "GATEWAY_CURSOR_SECRET": secret}) == (
        f"{path}: [server]: give one of cursor_secret and cursor_secret_env, not both")


def test_without_the_environment_everything_else_is_checked(tmp_path: Path) -> None:
    text = GOOD.replace('cursor_secret = "a-cursor-secret-for-the-tests"',
                        'cursor_secret_env = "GATEWAY_CURSOR_SECRET"')
    config = load_config(write(tmp_path, text), environ={}, check_environment=False)
    assert config.server.cursor_secret is None  # nothing read from the environment
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text.replace("timeout_seconds = 5", "timeout_seconds = 0")),
                    environ={}, check_environment=False)
    assert str(caught.value) == (f"{tmp_path / 'gateway.toml'}: [[sources]] #2 (joptic) "
                                 "timeout_seconds: must be more than 0")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    assert caught.value.unset_variables == ("GATEWAY_CURSOR_SECRET", "JOPTIC_TOKEN")


def test_a_variable_name_is_a_name(tmp_path: Path) -> None:
    message = error_for(tmp_path, GOOD.replace('"JOPTIC_TOKEN"', '"$JOPTIC_TOKEN"'))
    assert message.endswith("[[sources]] #2 (joptic) token_env: '$JOPTIC_TOKEN' is not the name "
                            "of an environment variable (letters, digits and _, without a $)")


def _warnings(tmp_path: Path, text: str) -> list[str]:
    return config_warnings(load_config(write(tmp_path, text),
                                       environ={"JOPTIC_TOKEN": "env-token-value"}))


def test_contradictory_settings_warn(tmp_path: Path) -> None:
    assert _warnings(tmp_path, GOOD) == []
    text = GOOD.replace("[server]", "[server]\ngraphiql = true\nfield_suggestions = true\n"
                                    "federation = true\nrequest_timeout_seconds = 5") + """
[persisted]
mode = "trusted"

[response_cache]
public = true

[auth]
required = true
api_keys = [{ client = "shop", sha256 = "%s" }]

[metrics]
enabled = false
port = 9464

[tracing]
exporter = "console"
endpoint = "http://collector:4318/v1/traces"

[defaults]
timeout_seconds = 8
""" % ("0" * 63 + "1")
    assert _warnings(tmp_path, text) == [
        "[server] graphiql = true with introspection = false: GraphiQL cannot load the schema "
        "(no documentation, no completion): set introspection = true too, or graphiql = false",
        "[server] field_suggestions = true with introspection = false: \"Did you mean …?\" "
        "tells a client the field names introspection hides: set field_suggestions = false",
        "[server] federation = true with [persisted] mode = \"trusted\": the router's queries "
        "(_service, _entities) are made at run time, are registered nowhere, and are refused",
        "[response_cache] public = true with [auth] required = true: every answer is an "
        "authenticated client's, so private: public does nothing",
        "[metrics] port = 9464 with enabled = false: nothing is served on it",
        "[tracing] endpoint with exporter = \"console\": spans go to stdout, the endpoint is not "
        "used",
        "[defaults] timeout_seconds = 8 with [server] request_timeout_seconds = 5: the request's "
        "deadline ends a slow try first, so it is never retried: make timeout_seconds shorter",
        "[[sources]] #2 (joptic) timeout_seconds = 5 with [server] request_timeout_seconds = 5: "
        "the request's deadline ends a slow try first, so it is never retried: make "
        "timeout_seconds shorter",
    ]
    introspected = text.replace("graphiql = true", "graphiql = true\nintrospection = true")
    assert not any("graphiql" in w or "field_suggestions" in w
                   for w in _warnings(tmp_path, introspected))
