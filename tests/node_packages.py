"""npm packages the tests run in Node (the Apollo federation gateway, Apollo Client): a test
directory's package.json and scripts copied under ``build/`` (never committed) and installed
once per session. Without Node.js 18+ and npm the tests FAIL, never skip: CI installs them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
NPM_TIMEOUT = 600.0  # what an npm install may take


def require(program: str, purpose: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} not found: {purpose} need Node.js (18+) and npm (CI installs "
                    "them; locally: apt-get install nodejs npm)", pytrace=False)
    return path


def npm_installed(source: Path, files: Iterable[str], target_name: str, purpose: str) -> Path:
    """``build/<target_name>``: ``files`` of ``source`` copied there, npm-installed."""
    node, npm = require("node", purpose), require("npm", purpose)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < 18:
        pytest.fail(f"Node.js {version.stdout.strip()} is too old (18+ needed)", pytrace=False)
    target = ROOT / "build" / target_name
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copyfile(source / name, target / name)
    try:
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=target,
                              capture_output=True, text=True, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        output = b"\n".join(o if isinstance(o, bytes) else o.encode()
                             for o in (exc.stdout, exc.stderr) if o)
        pytest.fail(f"npm install took over {NPM_TIMEOUT:.0f} s:\n{output.decode()}",
                    pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"npm install failed ({done.returncode}):\n{done.stdout}\n{done.stderr}",
                    pytrace=False)
    return target
