"""``[changes]``: the change feed behind subscriptions."""

from __future__ import annotations

from pydantic import Field

from gateway.config.base import Strict

__all__ = ["ChangeSettings"]


class ChangeSettings(Strict):
    """The change feed behind subscriptions (gateway/changes): limits, and where its state is
    kept. Which sources are watched, and how often, is ``poll_interval_seconds`` per source."""

    # Events a subscriber may lag behind; more than one poll may announce at once (a queue holds
    # references to events every subscriber shares: 8 bytes an entry).
    queue_size: int = Field(default=1000, ge=1, le=100_000)
    max_subscriptions: int = Field(default=1000, ge=0, le=1_000_000)  # in this process
    max_subscriptions_per_connection: int = Field(default=20, ge=1, le=1000)  # a WebSocket's
    # A client's share of this process (its identity, else its address: anonymous clients
    # behind one proxy share an address, and so a share).
    max_subscriptions_per_client: int = Field(default=100, ge=1, le=1_000_000)
    max_connections_per_client: int = Field(default=10, ge=1, le=100_000)  # WebSockets
    replay_events: int = Field(default=1000, ge=0, le=1_000_000)  # kept for a reconnect
    # Events one subscribe replays at most (each resolved, and charged, as a live one): past
    # it the newest are sent, the first with extensions.replay.skipped saying how many not.
    max_replay_per_subscribe: int = Field(default=100, ge=0, le=1_000_000)
    lease_seconds: float = Field(default=15.0, ge=1, le=3600)  # a poller's claim (Redis)
    # Watermarks and snapshots of known ids without Redis (with it: in Redis). Unset: kept in
    # memory only, so a restart takes a new baseline and announces nothing made while down.
    state_dir: str | None = None
    max_snapshot_items: int = Field(default=20_000, ge=1, le=1_000_000)  # per source and kind
