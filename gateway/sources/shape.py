"""What every adapter's reading of upstream JSON shares.

Adapters decode answers with msgspec into typed shapes (``SourceAdapter.decode``), so types are
checked in C. What a type cannot say (an unknown state, an empty id) an adapter checks itself and
raises :class:`ShapeError`; the adapter turns it into ``UPSTREAM_BAD_RESPONSE`` naming its source
(never the URL or the body).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["ShapeError", "as_utc"]


class ShapeError(Exception):
    """The upstream answered JSON of an unexpected shape (the message says where)."""


def as_utc(moment: datetime | None) -> datetime | None:
    """A time as every adapter gives it: timezone-aware, UTC when the upstream named no zone."""
    return moment if moment is None or moment.tzinfo is not None else moment.replace(
        tzinfo=UTC)
