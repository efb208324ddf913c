"""The Dockerfile and compose.yaml, read without a container engine: they use real commands,
options, ports and configuration keys, so they cannot rot unseen."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import yaml

from gateway.cli import parser
from gateway.config import load_config
from tests.processes import ROOT

TOKENS = {**{f"{kind.upper()}_TOKEN": "t" for kind in ("carecloud", "joptic", "axim", "comestri")},
          "GATEWAY_CURSOR_SECRET": "packaging-test-cursor-secret-0123"}


def _instructions() -> dict[str, list[str]]:
    """Each Dockerfile instruction's arguments, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, rest = line.strip().partition(" ")
            found.setdefault(name.upper(), []).append(rest.strip())
    return found


def _exec_form(value: str) -> list[str]:
    parsed: list[str] = json.loads(value)
    return parsed


def _serve_args(argv: list[str]) -> Any:
    """``argv`` as the gateway's own command line parses it (exits on an unknown option)."""
    return parser().parse_args(argv)


def test_the_dockerfile_runs_the_gateway_as_a_user_with_a_healthcheck() -> None:
    steps = _instructions()
    assert steps["FROM"] == ["python:3.11-slim"]
    [user] = steps["USER"]
    assert user not in ("root", "0")
    assert _exec_form(steps["ENTRYPOINT"][0]) == ["python", "-m", "gateway"]
    args = _serve_args(_exec_form(steps["CMD"][0]))
    assert args.command == "serve" and args.workers >= 1
    [check] = steps["HEALTHCHECK"]
    assert f"http://127.0.0.1:{args.port}/healthz" in check
    assert str(args.port) in steps["EXPOSE"][0].split()
    # What the image installs is what the gateway needs: the package, with its tracing extra.
    assert any(".[tracing]" in run for run in steps["RUN"])
    assert "tracing" in (ROOT / "pyproject.toml").read_text()


def test_compose_runs_two_replicas_over_redis_with_a_checked_configuration() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert "redis" in services
    gateways = {name: s for name, s in services.items() if name.startswith("gateway")}
    assert len(gateways) == 2
    for service in gateways.values():
        args = _serve_args(service["command"])
        assert args.command == "serve"
        [volume] = service["volumes"]
        source, target, *_ = volume.split(":")
        assert target == args.config
        config = load_config(ROOT / source, environ=TOKENS)  # every key real, every value valid
        assert config.cache.url == "redis://redis:6379/0"  # the compose file's redis service
        published = {int(p.split(":")[1]) for p in service["ports"]}
        assert args.port in published
        assert config.metrics.port in published
        assert set(service["environment"]) == {config.server.cursor_secret_env,
                                               *(s.token_env for s in config.sources)}
        assert "redis" in service["depends_on"]
        grace = config.server.drain_seconds + config.server.grace_seconds
        assert int(service["stop_grace_period"].rstrip("s")) > grace


def test_the_example_configuration_has_every_section_of_the_configuration() -> None:
    text = (ROOT / "examples" / "gateway.toml").read_text()
    config = load_config(ROOT / "examples" / "gateway.toml", environ=TOKENS)
    for section in ("server", "cache", "metrics", "logging", "tracing", "defaults"):
        assert f"[{section}]" in text, section
    assert config.server.profile == "production" and not config.server.graphiql
    assert config.server.cors_origins  # explicit


def test_the_production_page_names_real_commands() -> None:
    page = (ROOT / "docs" / "operations.md").read_text()
    section = page.split("## Running in production", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"`(?:\.venv/bin/)?(python -m gateway [^`]+)`", section)
    assert commands
    for line in commands:
        _serve_args(shlex.split(line)[3:])
    assert "--workers" in section and "Redis" in section and "compose.yaml" in section
