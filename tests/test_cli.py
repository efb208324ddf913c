"""The command line, run as a user runs it: a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.graph import print_sdl

ROOT = Path(__file__).resolve().parents[1]


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
        '[[sources]]\nname = "cc"\nkind = "carecloud"\n'
        'base_url = "http://127.0.0.1:1"\ntoken = "tok-abc-123"\n'
    )
    result = run("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert "ok: 1 sources: cc (carecloud)" in result.stdout
    assert "tok-abc-123" not in result.stdout + result.stderr


def test_check_config_bad_exits_2_without_traceback_or_token(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[sources]]\nname = "cc"\nkind = "carecare"\n'
        'base_url = "http://127.0.0.1:1"\ntoken = "tok-abc-123"\n'
    )
    result = run("check-config", str(path))
    assert result.returncode == 2
    assert f'{path}: sources[0] (name "cc").kind' in result.stderr
    assert "Traceback" not in result.stderr
    assert "tok-abc-123" not in result.stdout + result.stderr


def test_schema_command_prints_the_published_sdl() -> None:
    result = run("schema")
    assert result.returncode == 0
    assert result.stdout == print_sdl()
    assert result.stdout == (ROOT / "schema" / "schema.graphql").read_text(), (
        "schema/schema.graphql drifted from the code: run `make schema`"
    )
