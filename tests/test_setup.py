"""A fresh clone's first ``make run``: runtime packages only, visible progress in a few lines,
a first answer; and ``make setup`` repairing a playground that could not be installed.

The working tree (tracked and new files, no venv, no build/) is copied to a temporary directory
and ``make run`` starts there as a new user starts it; the installers use their caches (the
time from a clone with no caches at all is measured outside the suite: README, first screen).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tomllib
from pathlib import Path

import httpx

from tests.processes import ROOT, Process

SETUP_TIMEOUT = 600  # a cold pip cache downloads every runtime package


def _fresh_clone(into: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def _distribution(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name is not None, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def test_make_run_on_a_fresh_clone_installs_no_dev_extra_and_answers(tmp_path: Path) -> None:
    clone = _fresh_clone(tmp_path / "clone")
    assert not (clone / ".venv").exists() and not (clone / "build").exists()
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL")}  # as a user's shell has it

    # A machine without npm: the gateway installs, GraphiQL waits, and says for what.
    without = subprocess.run(["make", "setup", "NPM=npm-is-not-installed"], cwd=clone, env=env,
                             capture_output=True, text=True, timeout=SETUP_TIMEOUT)
    assert without.returncode == 0, without.stdout + without.stderr
    assert "npm not found" in without.stdout and "make setup" in without.stdout
    assert (clone / ".venv" / ".installed-run").is_file()
    assert not (clone / "build" / "playground" / ".installed").exists()

    # npm there, `make run` (its `make setup`) installs what is missing, then serves.
    with Process(["make", "run", "PORT=0"], cwd=clone, env=env) as run:
        url = run.wait_for(r"^  GraphQL +(http://\S+/graphql)$", timeout=SETUP_TIMEOUT).group(1)
        answer = httpx.post(url, json={"query": "{ sources { id kind } }"}, timeout=60).json()
        run.stop(signal.SIGINT)
    output = run.output

    assert answer == {"data": {"sources": [
        {"id": "carecloud", "kind": "CARECLOUD"}, {"id": "joptic", "kind": "JOPTIC"},
        {"id": "axim", "kind": "AXIM"}, {"id": "comestri", "kind": "COMESTRI"}]}}
    assert (clone / "build" / "playground" / ".installed").is_file()
    # Progress in a few lines: a line per step, no installer's chatter, then the banner.
    before_banner = output.split("Catalogue gateway demo")[0].splitlines()
    assert before_banner == ["==> GraphiQL's files, into build/playground (npm)",
                             "==> GraphiQL is installed"], output
    assert "Editable installation" not in output and "BuildBackendWarning" not in output, output

    pyproject = tomllib.loads((clone / "pyproject.toml").read_text())
    listed = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True).stdout
    installed = {_distribution(p["name"]) for p in json.loads(listed)}
    runtime = {_distribution(r) for r in pyproject["project"]["dependencies"]}
    dev = {_distribution(r) for r in pyproject["project"]["optional-dependencies"]["dev"]}
    assert runtime <= installed, runtime - installed
    assert not dev & installed, f"dev extras installed by make run: {sorted(dev & installed)}"
    assert (clone / ".venv" / ".installed-run").is_file()
    assert not (clone / ".venv" / ".installed-dev").exists()

    # `make test` would add the dev extras itself, then run pytest (dry run: nothing runs).
    plan = subprocess.run(["make", "-n", "test"], cwd=clone, env=env, capture_output=True,
                          text=True, check=True).stdout
    assert "-e '.[dev]'" in plan and "-m pytest" in plan, plan
    assert plan.index("-e '.[dev]'") < plan.index("-m pytest")
