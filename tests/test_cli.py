"""The command line, run as a user runs it: a subprocess."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from gateway.cli import parser
from gateway.edge.serving import LOG_LEVELS
from gateway.emulators import DEMO_TOKENS, KINDS
from gateway.graph import print_sdl
from tests.processes import Process

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gateway.toml"
TOKEN_VARIABLES = ("CARECLOUD_TOKEN", "JOPTIC_TOKEN", "AXIM_TOKEN", "COMESTRI_TOKEN")
# Every variable examples/gateway.toml reads: its cursor secret, then its sources' tokens.
EXAMPLE_VARIABLES = ("GATEWAY_CURSOR_SECRET", *TOKEN_VARIABLES)
GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# What uvicorn prints per server at start and stop: the demo shows its own banner instead.
UVICORN_LINES = ("Started server process", "Waiting for application startup",
                 "Application startup complete", "Uvicorn running on", "Shutting down",
                 "Finished server process")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_check_config_ok(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(
        '[server]\ncursor_secret = "s3cret-cursor-key"\n'
        '[[sources]]\nname = "cc"\nkind = "carecloud"\n'
        'base_url = "http://127.0.0.1:1"\ntoken = "tok-abc-123"\n'
    )
    result = run("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{path}: ok: 1 source: cc (carecloud)\n"
    assert "tok-abc-123" not in result.stdout + result.stderr
    assert "s3cret-cursor-key" not in result.stdout + result.stderr


def test_check_config_bad_exits_2_without_traceback_or_token(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[sources]]\nname = "cc"\nkind = "carecare"\n'
        'base_url = "http://127.0.0.1:1"\ntoken = "tok-abc-123"\n'
    )
    result = run("check-config", str(path))
    assert result.returncode == 2
    assert (f"{path}: [[sources]] #1 (cc) kind: must be one of carecloud, joptic, axim, "
            "comestri") in result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert "tok-abc-123" not in result.stdout + result.stderr


def test_schema_command_prints_the_published_sdl() -> None:
    result = run("schema")
    assert result.returncode == 0
    assert result.stdout == print_sdl()
    assert result.stdout == (ROOT / "schema" / "schema.graphql").read_text(), (
        "schema/schema.graphql drifted from the code: run `make schema`"
    )


def test_check_config_lists_every_problem_at_once_and_exits_2(tmp_path: Path) -> None:
    """An unknown key, a blank token, a missing token, a duplicate name and no cursor secret for
    the production profile: one run, five lines."""
    path = tmp_path / "four.toml"
    path.write_text(
        '[[sources]]\nname = "cc"\nkind = "carecloud"\nbase_url = "http://127.0.0.1:1"\n'
        'token = "tok-abc-123"\ntimeout_secs = 3\n\n'
        '[[sources]]\nname = "jo"\nkind = "joptic"\nbase_url = "http://127.0.0.1:2"\n'
        'token = "  "\n\n'
        '[[sources]]\nname = "ax"\nkind = "axim"\nbase_url = "http://127.0.0.1:3"\n\n'
        '[[sources]]\nname = "cc"\nkind = "comestri"\nbase_url = "http://127.0.0.1:4"\n'
        'token_env = "CGW_TEST_COMESTRI_TOKEN"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "CGW_TEST_COMESTRI_TOKEN"}
    result = run("check-config", str(path), env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "configuration error:",
        f"{path}: [server] cursor_secret: the production profile needs a secret to sign "
        "cursors with: set cursor_secret_env to an environment variable that holds one, or "
        f"cursor_secret (generate one, e.g. `{GENERATE}`), or profile = \"development\" on a "
        "machine of your own",
        f"{path}: [[sources]] #1 (cc) timeout_secs: unknown key (did you mean timeout_seconds?)",
        f"{path}: [[sources]] #2 (jo) token: the token is empty",
        f"{path}: [[sources]] #3 (ax): no token: give token_env, naming an environment "
        "variable that holds it, or token",
        f"{path}: [[sources]] #4 (cc) token_env: environment variable CGW_TEST_COMESTRI_TOKEN "
        "is not set: export CGW_TEST_COMESTRI_TOKEN=… with this source's token",
        f"{path}: [[sources]] #4 (cc) name: duplicate source name 'cc' (also [[sources]] #1)",
        "Set CGW_TEST_COMESTRI_TOKEN in the environment (e.g. `export "
        f"CGW_TEST_COMESTRI_TOKEN=…`), or check the rest with `check-config --no-env {path}`.",
    ]
    assert "tok-abc-123" not in result.stderr


def test_the_example_configuration_checks() -> None:
    env = {**os.environ, **{name: f"token-of-{name}" for name in TOKEN_VARIABLES},
           "GATEWAY_CURSOR_SECRET": secrets.token_urlsafe(32)}
    result = run("check-config", "examples/gateway.toml", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("examples/gateway.toml: ok: 4 sources: carecloud (carecloud), "
                             "joptic (joptic), axim (axim), comestri (comestri)\n")
    assert result.stderr == ""  # no warning either
    assert "token-of-" not in result.stdout


def test_the_example_configuration_without_its_variables_says_how_to_set_each() -> None:
    """The README's first check-config: one line per unset variable, naming the key, the source
    and how to set it, then one line saying how to set them all or check the rest."""
    env = {k: v for k, v in os.environ.items() if k not in EXAMPLE_VARIABLES}
    result = run("check-config", "examples/gateway.toml", env=env)
    assert result.returncode == 2
    path = "examples/gateway.toml"
    assert result.stderr.splitlines() == [
        "configuration error:",
        f"{path}: [server] cursor_secret_env: environment variable GATEWAY_CURSOR_SECRET is not "
        f"set: export GATEWAY_CURSOR_SECRET=\"$({GENERATE})\"",
        *(f"{path}: [[sources]] #{number} ({kind}) token_env: environment variable "
          f"{kind.upper()}_TOKEN is not set: export {kind.upper()}_TOKEN=… with this source's "
          "token" for number, kind in enumerate(KINDS, 1)),
        "Set GATEWAY_CURSOR_SECRET, CARECLOUD_TOKEN, JOPTIC_TOKEN, AXIM_TOKEN, COMESTRI_TOKEN in "
        "the environment (e.g. `export GATEWAY_CURSOR_SECRET=… CARECLOUD_TOKEN=… JOPTIC_TOKEN=… "
        f"AXIM_TOKEN=… COMESTRI_TOKEN=…`), or check the rest with `check-config --no-env {path}`.",
    ]


def test_check_config_no_env_checks_everything_but_the_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in EXAMPLE_VARIABLES}
    result = run("check-config", "--no-env", "examples/gateway.toml", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("examples/gateway.toml: ok (environment variables not checked): "
                             "4 sources: carecloud (carecloud), joptic (joptic), axim (axim), "
                             "comestri (comestri)\n")
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('kind = "axim"', 'kind = "axiom"'))
    result = run("check-config", "--no-env", str(bad), env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "configuration error:",
        f"{bad}: [[sources]] #3 (axim) kind: must be one of carecloud, joptic, axim, comestri"]


def test_check_config_names_the_line_of_a_key_set_twice(tmp_path: Path) -> None:
    """What the README's configuration block did: tomllib's words named no key."""
    path = tmp_path / "gateway.toml"
    path.write_text('[server]\nprofile = "production"\ncursor_secret = "s3cret-cursor-key-0123"\n'
                    'port = 8000\ncursor_secret = "s3cret-cursor-key-4567"\n')
    result = run("check-config", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "configuration error:",
        f"{path}, line 5, column 1: [server] cursor_secret: set twice (first on line 3): keep "
        "one of them"]
    assert "s3cret" not in result.stderr


def test_check_config_and_serve_refuse_the_old_example_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[server]\ncursor_secret = "replace-me-with-the-output-of-the-command-above"'
                    '\n[[sources]]\nname = "cc"\nkind = "carecloud"\n'
                    'base_url = "http://127.0.0.1:1"\ntoken = "tok-abc-123"\n')
    expected = ["configuration error:",
                f"{path}: [server] cursor_secret: looks like a placeholder: generate one, e.g. "
                f"`{GENERATE}`"]
    for command in (["check-config", str(path)], ["serve", "--config", str(path)]):
        result = run(*command)
        assert result.returncode == 2
        assert result.stderr.splitlines() == expected, result.stderr


def test_contradictory_settings_warn_at_check_config_and_at_start(tmp_path: Path) -> None:
    warning = (f"warning: {tmp_path / 'gateway.toml'}: [server] graphiql = true with "
               "introspection = false: GraphiQL cannot load the schema (no documentation, no "
               "completion): set introspection = true too, or graphiql = false")
    with _serve(tmp_path, "graphiql = true\n") as serve:
        serve.wait_for(r"Uvicorn running on")
        assert warning in serve.lines
        assert serve.stop() == 0
    result = run("check-config", str(tmp_path / "gateway.toml"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [warning]
    assert result.stdout.endswith(": ok: 1 source: cc (carecloud)\n")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    choices: dict[str, argparse.ArgumentParser] = actions[0].choices
    return choices


def _entries(help_text: str) -> dict[str, str]:
    """``--help`` output's argument entries: first option string (or name) -> its whole text."""
    entries: dict[str, str] = {}
    current = None
    for line in help_text.splitlines():
        start = re.match(r"^  (-{0,2}[\w-]+)", line)
        if start:
            current = start.group(1)
            entries[current] = line
        elif current is not None and line.startswith("    "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return {name: re.sub(r"\s+", " ", text) for name, text in entries.items()}


def test_subcommands_are_the_documented_ones() -> None:
    assert list(_subcommands()) == ["serve", "demo", "check-config", "config-schema", "schema"]


@pytest.mark.parametrize("command", ["serve", "demo", "check-config", "config-schema",
                                     "schema"])
def test_every_option_has_help_and_shows_its_default(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m gateway {command} ")
    assert "``" not in result.stdout and ":class:" not in result.stdout  # plain text
    entries = _entries(result.stdout)
    actions = [a for a in _subcommands()[command]._actions
               if not isinstance(a, argparse._HelpAction)]
    assert actions
    for action in actions:
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help, f"{command} {name} has no help"
        text = entries[name]
        assert action.help.split()[0] in text, (name, text)
        if action.option_strings:
            assert re.search(r"\bdefault\b", text), f"{command} {name} hides its default: {text}"
        if name == "--log-level":
            assert all(level in text for level in LOG_LEVELS), text
            assert "(default: info)" in text or "itself info by default" in text


# What a command loads when it runs, and --help must not: the server, the app, the schema,
# the metrics and the configuration's models.
HEAVY = ("uvicorn", "uvloop", "strawberry", "graphql", "starlette", "prometheus_client",
         "pydantic", "httpx", "gateway.edge.app", "gateway.config", "gateway.edge.serving",
         "gateway.observability.metrics")


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["demo", "--help"],
                                  ["check-config", "--help"], ["schema", "--help"], []],
                         ids=lambda args: " ".join(args) or "no command")
def test_help_and_usage_import_nothing_heavy(args: list[str]) -> None:
    """`python -m gateway --help` took a second importing the server; now it imports argparse.
    Python's own import log of the real command names every module it imported."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "gateway", *args],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == (0 if args else 2), result.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "gateway.cli" in imported and "argparse" in imported
    loaded = sorted(name for name in imported
                    if any(name == heavy or name.startswith(f"{heavy}.") for heavy in HEAVY))
    assert loaded == []


def test_the_command_lines_constants_are_the_servers() -> None:
    """cli names them itself so that --help imports neither the app nor uvicorn."""
    from gateway import cli
    from gateway.edge import app, serving

    assert cli.CONFIG_ENV == app.CONFIG_ENV
    assert cli.LOG_LEVELS == serving.LOG_LEVELS


def test_log_level_refuses_an_unknown_level() -> None:
    result = run("demo", "--log-level", "verbose")
    assert result.returncode == 2
    assert "invalid choice: 'verbose'" in result.stderr


def test_console_script_and_module_print_the_same_usage_under_their_names() -> None:
    script = Path(sys.executable).parent / "catalogue-gateway"
    for args in ([], ["serve"], ["demo"], ["check-config"], ["schema"]):
        module = run(*args, "--help")
        console = subprocess.run([str(script), *args, "--help"], capture_output=True, text=True,
                                 cwd=ROOT, timeout=60)
        assert module.returncode == console.returncode == 0, console.stderr
        assert console.stdout.startswith("usage: catalogue-gateway ")
        # The usage lines wrap at the program name's width: compare the words.
        assert (module.stdout.replace("python -m gateway", "PROG").split()
                == console.stdout.replace("catalogue-gateway", "PROG").split())


def test_demo_prints_one_banner_then_a_line_per_graphql_request() -> None:
    with Process([sys.executable, "-m", "gateway", "demo", "--port", "0"]) as demo:
        url = demo.wait_for(r"^  GraphQL +(http://127\.0\.0\.1:\d+/graphql)$").group(1)
        demo.wait_for(r"^Press Ctrl\+C to stop\.")
        startup = demo.output
        body = httpx.post(url, json={"query": "query Sources { sources { id } }"},
                          timeout=30).json()
        assert body == {"data": {"sources": [{"id": kind} for kind in KINDS]}}
        # Not a terminal: one JSON line per request.
        line = json.loads(demo.wait_for(r'^\{.*"logger":"gateway\.access".*\}$').group(0))
        assert (line["operation"], line["status"], line["outcome"]) == ("Sources", 200, "ok")
        assert line["duration_ms"] >= 0 and line["request_id"]
        code = demo.stop()
    lines = startup.splitlines()
    assert lines[0].startswith("Catalogue gateway demo")
    assert lines[1:3] == [f"  GraphQL    {url}", f"  GraphiQL   {url}  (open it in a browser)"]
    for kind in KINDS:
        assert re.search(rf"^    {kind} +http://127\.0\.0\.1:\d+ +{DEMO_TOKENS[kind]}$",
                         startup, re.MULTILINE), startup
    assert len(lines) == 9, startup  # nothing else: one block, not one per server
    assert code == 0, demo.output
    for noise in (*UVICORN_LINES, "Traceback", "ERROR"):
        assert noise not in demo.output


def test_demo_churn_changes_an_emulator_every_interval_and_says_what() -> None:
    with Process([sys.executable, "-m", "gateway", "demo", "--port", "0", "--churn", "0.2"]
                 ) as demo:
        joptic = demo.wait_for(r"^    joptic +(http://127\.0\.0\.1:\d+) ").group(1)
        graphql = demo.wait_for(r"GraphQL +(\S+)").group(1)
        demo.wait_for(r"^Press Ctrl\+C to stop\.")
        startup = demo.output
        events = _subscribed(graphql, "subscription { productGroupChanged(filter: "
                                      '{sources: ["joptic"]}) { change node { id name } } }')
        # A Joptic group created or renamed: its own API lists it under the new name, and a
        # subscriber hears of it (the demo watches every source).
        line = demo.wait_for(r'^churn: joptic (?:created|renamed) group (\S+) (?:to )?"([^"]+)"$')
        group_id, name = line.group(1), line.group(2)
        found = httpx.get(f"{joptic}/product-groups", params={"search": name},
                          headers={"Authorization": f"Bearer {DEMO_TOKENS['joptic']}"},
                          timeout=30).json()["data"]
        assert [(g["id"], g["name"]) for g in found] == [(group_id, name)]
        deadline = time.monotonic() + 30  # a name churn printed arrives (a later change of
        while not any(f'"{_name(e)}"' in demo.output for e in events):  # the group may win)
            assert time.monotonic() < deadline, events
            time.sleep(0.1)
        code = demo.stop()
    assert "Every 0.2 s a random emulator's data changes (a churn: line each)." in startup
    assert len(startup.splitlines()) == 10, startup  # the banner and that one line
    churn = [line for line in demo.output.splitlines() if line.startswith("churn: ")]
    assert all(re.match(r"^churn: (carecloud|joptic|axim|comestri) (created|renamed|deleted) ",
                        line) for line in churn), churn
    assert code == 0, demo.output
    assert "Traceback" not in demo.output


def _name(event: dict[str, Any]) -> str:
    return str(event["node"]["name"])


def _subscribed(url: str, query: str) -> list[dict[str, Any]]:
    """The events of an SSE subscription, collected by a thread until the server ends it."""
    events: list[dict[str, Any]] = []
    opened = threading.Event()

    def read() -> None:
        with httpx.Client(timeout=httpx.Timeout(30, read=None)) as client, \
                connect_sse(client, "POST", url, json={"query": query}) as source:
            opened.set()
            for sse in source.iter_sse():
                if sse.event == "next":
                    events.append(json.loads(sse.data)["data"]["productGroupChanged"])

    threading.Thread(target=read, daemon=True).start()
    assert opened.wait(30)
    return events


@pytest.mark.parametrize(("value", "problem"), [
    ("0.1", "0.1 is outside 0.2..3600 seconds"), ("3601", "3601 is outside 0.2..3600 seconds"),
    ("nan", "nan is outside 0.2..3600 seconds"), ("soon", "not a number of seconds: 'soon'")])
def test_demo_churn_refuses_a_bad_interval(value: str, problem: str) -> None:
    result = run("demo", "--churn", value)
    assert result.returncode == 2
    assert f"argument --churn: {problem}" in result.stderr


def _serve(tmp_path: Path, extra: str) -> Process:
    path = tmp_path / "gateway.toml"
    path.write_text(f'[server]\nport = 0\ncursor_secret = "s3cret-cursor-key-0"\n{extra}\n'
                    '[[sources]]\nname = "cc"\n'
                    'kind = "carecloud"\nbase_url = "http://127.0.0.1:1"\ntoken = "t"\n')
    return Process([sys.executable, "-m", "gateway", "serve", "--config", str(path)])


@pytest.mark.parametrize("access_log", [False, True])
def test_serve_logs_requests_only_when_configured(tmp_path: Path, access_log: bool) -> None:
    extra = "access_log = true\n" if access_log else ""
    with _serve(tmp_path, extra) as serve:
        url = serve.wait_for(r"Uvicorn running on (http://\S+)").group(1)
        body = httpx.post(f"{url}/graphql", json={"query": "query Q { sources { id } }"},
                          timeout=30).json()
        assert body == {"data": {"sources": [{"id": "cc"}]}}
        # /healthz afterwards: once it answered, a line for the GraphQL request would be out.
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
        if access_log:
            line = json.loads(serve.wait_for(r'^\{.*"logger":"gateway\.access".*\}$').group(0))
            assert (line["method"], line["path"], line["operation"], line["status"]) == (
                "POST", "/graphql", "Q", 200)
        else:
            with pytest.raises(AssertionError):
                serve.wait_for(r"gateway\.access", timeout=1)
        assert serve.stop() == 0


def test_serve_refuses_the_production_profile_without_a_cursor_secret(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[[sources]]\nname = "cc"\nkind = "carecloud"\n'
                    'base_url = "http://127.0.0.1:1"\ntoken = "t"\n')
    result = run("serve", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "configuration error:",
        f"{path}: [server] cursor_secret: the production profile needs a secret to sign "
        "cursors with: set cursor_secret_env to an environment variable that holds one, or "
        f"cursor_secret (generate one, e.g. `{GENERATE}`), or profile = \"development\" on a "
        "machine of your own"]


def test_serve_has_read_deadlines_and_no_server_header(tmp_path: Path) -> None:
    with _serve(tmp_path, "header_timeout_seconds = 1\n") as serve:
        url = serve.wait_for(r"Uvicorn running on (http://\S+)").group(1)
        assert "server" not in httpx.get(f"{url}/healthz", timeout=30).headers
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert time.monotonic() - started < 5
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"code":"REQUEST_TIMEOUT"' in answer
        assert serve.stop() == 0


def test_a_serving_process_tunes_its_garbage_collector() -> None:
    """In a process of its own (the collector's settings are the process's): what the server
    built before serving is frozen out of the collector's reach, and the young generation is
    collected less often."""
    code = ("import gc; from gateway.edge.serving import YOUNG_GENERATION_THRESHOLD as Y, "
            "freeze_startup_heap as tune; before = gc.get_freeze_count(); tune(); "
            "print(before, gc.get_freeze_count() > 10_000, gc.get_threshold()[0] == Y)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["0", "True", "True"]
