"""Plain helpers the whole suite shares (fixtures are in ``conftest.py``): a free TCP port, a
server's health awaited, a GraphQL request over HTTP, and the error codes of a GraphQL answer."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from tests.leaks import SecretScan

__all__ = ["codes", "error_codes", "free_port", "post", "wait_healthy"]


def wait_healthy(url: str, *, timeout: float = 30.0,
                 exited: Callable[[], str | None] = lambda: None) -> None:
    """Return once ``url``'s ``/healthz`` answers 200. AssertionError after ``timeout`` seconds,
    or as soon as ``exited()`` says the server's process ended (its words: what it printed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = exited()
        if ended is not None:
            raise AssertionError(f"the server exited: {ended}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not become healthy in {timeout:g} s")


def free_port() -> int:
    """A loopback TCP port nothing listens on (the probe's socket is closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def post(to: str | httpx.Client, query: str | None = None,
         variables: Mapping[str, Any] | None = None,
         headers: Mapping[str, str | bytes] | None = None, *, scan: SecretScan | None = None,
         timeout: float = 30, **fields: Any) -> httpx.Response:
    """One GraphQL request: POST ``/graphql`` of ``to`` (a base URL, or a client whose base URL
    it is) with ``query``, ``variables`` and any other ``fields`` of the body (``extensions``,
    ``operationName``); a query or variables of None are not sent (no query: a hash-only
    persisted query). A header's value may be bytes, sent as they are. With ``scan``, the
    answer's text and headers are handed to it."""
    payload: dict[str, Any] = {}
    if query is not None:
        payload["query"] = query
    if variables is not None:
        payload["variables"] = variables
    payload.update(fields)
    raw = {name.encode(): value if isinstance(value, bytes) else value.encode()
           for name, value in (headers or {}).items()}
    if isinstance(to, httpx.Client):
        response = to.post("/graphql", json=payload, headers=raw, timeout=timeout)
    else:
        response = httpx.post(f"{to}/graphql", json=payload, headers=raw, timeout=timeout)
    if scan is not None:
        scan.seen(response.text)
        scan.seen(json.dumps(dict(response.headers)))
    return response


def error_codes(errors: Iterable[Mapping[str, Any]] | None) -> list[Any]:
    """The ``extensions.code`` of each error, in order (None for an error without one)."""
    return [(error.get("extensions") or {}).get("code") for error in errors or ()]


def codes(body: Mapping[str, Any]) -> list[Any]:
    """The ``extensions.code`` of each error of a GraphQL answer's body (an ExecutionResult's
    ``formatted`` is one)."""
    return error_codes(body.get("errors"))


def eventually(check: Callable[[], bool], timeout: float = 30) -> None:
    """Wait until ``check()`` holds (asked every 0.1 s), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
