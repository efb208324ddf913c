"""Reading and rewriting upstream response headers, the same way in every layer."""

from __future__ import annotations

import math

import httpx

__all__ = ["decoded_body_headers", "retry_after_seconds"]

# Headers that describe the body as it travelled on the wire, not the decoded bytes we keep.
WIRE_ENCODING = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds; None when absent or an HTTP date (rare from APIs)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def decoded_body_headers(headers: httpx.Headers) -> list[tuple[bytes, bytes]]:
    """The headers of a response whose body is already read and decoded."""
    return [(k, v) for k, v in headers.raw if k.lower() not in WIRE_ENCODING]
