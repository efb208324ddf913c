"""Reading upstream JSON defensively: one set of checks for every adapter.

An answer of a shape an adapter does not expect raises :class:`ShapeError`; the adapter turns it
into ``UPSTREAM_BAD_RESPONSE`` naming its source (never the URL or the body).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["ShapeError", "as_utc", "iso_time", "number", "optional", "parse_iso_time", "required",
           "strings", "text"]


class ShapeError(Exception):
    """The upstream answered JSON of an unexpected shape (the message says where)."""


def optional(container: Any, key: str, kind: type[Any]) -> Any:
    """``container[key]`` of ``kind``, or None when absent or null."""
    if not isinstance(container, dict):
        raise ShapeError(f"expected an object holding '{key}'")
    value = container.get(key)
    if value is None or type(value) is kind:  # the common case, without the checks below
        return value
    # bool is an int in Python; an int field holding true/false is still the wrong shape.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ShapeError(f"'{key}' is not a {kind.__name__}")
    return value


def required(container: Any, key: str, kind: type[Any]) -> Any:
    """``container[key]``, which must be present, not null, and of ``kind``."""
    value = optional(container, key, kind)
    if value is None:
        raise ShapeError(f"'{key}' is missing")
    return value


def text(container: Any, key: str) -> str | None:
    value: str | None = optional(container, key, str)
    return value


def number(container: Any, key: str) -> float | None:
    """An int or float (not a bool) as a float, or None."""
    value = optional(container, key, object)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ShapeError(f"'{key}' is not a number")
    return float(value)


def strings(container: Any, key: str) -> list[str]:
    values = optional(container, key, list) or []
    if not all(isinstance(v, str) for v in values):
        raise ShapeError(f"'{key}' is not a list of strings")
    return list(values)


def iso_time(container: Any, key: str) -> datetime | None:
    """``container[key]`` as an ISO 8601 time (see :func:`parse_iso_time`)."""
    return parse_iso_time(text(container, key), key)


def parse_iso_time(raw: str | None, key: str) -> datetime | None:
    """An ISO 8601 time with ``Z`` or an offset, timezone-aware; one without a zone is UTC."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ShapeError(f"'{key}' is not an ISO 8601 time") from None
    return as_utc(moment)


def as_utc(moment: datetime | None) -> datetime | None:
    """A time as every adapter gives it: timezone-aware, UTC when the upstream named no zone."""
    return moment if moment is None or moment.tzinfo is not None else moment.replace(
        tzinfo=UTC)
