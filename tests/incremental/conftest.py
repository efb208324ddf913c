"""Apollo Client 4 in Node, for the incremental-delivery (``@defer``) tests.

The npm packages (``package.json``) are installed once per session into ``build/incremental``
(never committed), beside ``apollo_defer.mjs``, which runs one operation with ApolloClient and
prints every result it emits as a JSON line. Without node and npm the tests FAIL, never skip:
CI installs them.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.node_packages import npm_installed, require

HERE = Path(__file__).parent
NODE_FILES = ("package.json", "apollo_defer.mjs")
RUN_TIMEOUT = 60.0  # one operation, its slow parts included
HANDLERS = ("defer20220824", "alpha9")  # apollo_defer.mjs's names of the incremental handlers


@pytest.fixture(scope="session")
def apollo_dir() -> Path:
    """``build/incremental``: this directory's package.json and script, npm-installed."""
    return npm_installed(HERE, NODE_FILES, "incremental", "the incremental-delivery tests")


@dataclass(frozen=True)
class ApolloRun:
    """What one ``apollo_defer.mjs`` run saw."""

    results: list[dict[str, Any]]  # every result ApolloClient emitted, in order
    response: dict[str, Any]  # the HTTP response's "status" and "contentType"
    parts: list[dict[str, Any]]  # each payload HttpLink parsed from the body, before merging
    stderr: str = field(repr=False)

    @property
    def with_data(self) -> list[dict[str, Any]]:
        """The results that carry data (not the loading state the client emits first)."""
        return [r for r in self.results if r["data"] is not None]


@dataclass(frozen=True)
class Apollo:
    """Runs operations with Apollo Client 4 (``apollo_defer.mjs`` in ``directory``)."""

    directory: Path

    def run(self, url: str, handler: str, query: str,
            variables: dict[str, Any] | None = None, *, fetch_policy: str = "network-only",
            timeout: float = RUN_TIMEOUT) -> ApolloRun:
        """Run ``query`` against the GraphQL endpoint ``url`` with the incremental handler
        ``handler`` (``defer20220824`` or ``alpha9``) and the watched query's ``fetch_policy``
        (``network-only``: through the cache; ``no-cache``: the handler's merge as it is).
        AssertionError, with the script's output, unless it exited 0: a complete result
        without errors and a multipart body read to its closing boundary."""
        assert handler in HANDLERS, handler
        node = require("node", "the incremental-delivery tests")
        args = [node, "apollo_defer.mjs", url, handler, query]
        if variables is not None:
            args.append(json.dumps(variables))
        env = {**os.environ, "APOLLO_DEFER_RAW": "1", "APOLLO_DEFER_FETCH_POLICY": fetch_policy,
               "APOLLO_DEFER_TIMEOUT_MS": str(int(timeout * 1000))}
        try:
            done = subprocess.run(args, cwd=self.directory, capture_output=True, text=True,
                                  timeout=timeout + 10, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"apollo_defer.mjs ran over {timeout + 10:.0f} s:\n"
                                 f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from None
        if done.returncode != 0:
            raise AssertionError(f"apollo_defer.mjs exited {done.returncode} ({handler}, "
                                 f"{fetch_policy}):\n--- stdout ---\n{done.stdout}"
                                 f"--- stderr ---\n{done.stderr}")
        results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        response: dict[str, Any] = {}
        parts: list[dict[str, Any]] = []
        for line in done.stderr.splitlines():
            kind, _, payload = line.partition(" ")
            if kind == "response" and payload.startswith("{"):
                response = json.loads(payload)
            elif kind == "raw" and payload.startswith("{"):
                parts.append(json.loads(payload)["part"])
        return ApolloRun(results, response, parts, done.stderr)


@pytest.fixture(scope="session")
def apollo(apollo_dir: Path) -> Apollo:
    """Apollo Client 4, installed, ready to run operations."""
    return Apollo(apollo_dir)
