"""A client of answers in parts, written from the formats' descriptions (not the gateway's
code): reads a multipart/mixed or event-stream body part by part, with the time each part
arrived, and merges the parts into the whole answer."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

DEFER_SPEC = "multipart/mixed;deferSpec=20220824"
INCREMENTAL_SPEC = "multipart/mixed;incrementalSpec=v0.2"


@dataclass
class Parts:
    content_type: str
    parts: list[dict[str, Any]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # seconds since the request was sent


def fetch(url: str, query: str, variables: dict[str, Any] | None = None, *,
          accept: str = INCREMENTAL_SPEC, timeout: float = 60) -> Parts:
    """The answer's parts as they arrived (one part for a plain JSON answer)."""
    started = time.monotonic()
    with httpx.stream("POST", url, json={"query": query, "variables": variables},
                      headers={"accept": accept}, timeout=timeout) as response:
        kind = response.headers["content-type"]
        answer = Parts(kind)
        if kind.startswith("multipart/mixed"):
            boundary = kind.split('boundary="', 1)[1].split('"', 1)[0]
            _read_multipart(response, f"\r\n--{boundary}".encode(), answer, started)
        elif kind.startswith("text/event-stream"):
            _read_events(response, answer, started)
        else:
            answer.parts.append(json.loads(response.read()))
            answer.arrived.append(time.monotonic() - started)
    return answer


def _read_multipart(response: httpx.Response, delimiter: bytes, answer: Parts,
                    started: float) -> None:
    buffer = b""
    for chunk in response.iter_raw():
        buffer += chunk
        while True:
            end = buffer.find(delimiter, 1)  # a part is whole once the next boundary came
            if end < 0:
                break
            piece, buffer = buffer[:end], buffer[end:]
            piece = piece[len(delimiter):] if piece.startswith(delimiter) else piece
            _, _, body = piece.partition(b"\r\n\r\n")
            if body.strip():
                answer.parts.append(json.loads(body))
                answer.arrived.append(time.monotonic() - started)
    assert buffer.endswith(delimiter + b"--\r\n"), buffer[-200:]


def _read_events(response: httpx.Response, answer: Parts, started: float) -> None:
    event = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: ") and event == "next":
            answer.parts.append(json.loads(line[len("data: "):]))
            answer.arrived.append(time.monotonic() - started)


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole answer the parts make (either format): data, and every error."""
    first, *rest = parts
    data = first.get("data")
    errors = list(first.get("errors", []))
    paths = {p["id"]: p["path"] for p in first.get("pending", [])}
    for part in rest:
        for pending in part.get("pending", []):
            paths[pending["id"]] = pending["path"]
        for entry in part.get("incremental", []):
            errors += entry.get("errors", [])
            if "id" in entry:  # graphql-js 17
                path = paths[entry["id"]] + entry.get("subPath", [])
                if "items" in entry:
                    _at(data, path).extend(entry["items"])
                else:
                    _merge(_at(data, path), entry["data"])
            elif "items" in entry:  # deferSpec=20220824: the path ends with the item's index
                if entry["items"] is not None:
                    target = _at(data, entry["path"][:-1])
                    assert len(target) == entry["path"][-1], (target, entry)
                    target.extend(entry["items"])
            elif entry.get("data") is not None:
                _merge(_at(data, entry["path"]), entry["data"])
        for done in part.get("completed", []):
            errors += done.get("errors", [])
    whole: dict[str, Any] = {"data": data}
    if errors:
        whole["errors"] = errors
    return whole


def _at(data: Any, path: list[Any]) -> Any:
    for key in path:
        data = data[key]
    return data


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
