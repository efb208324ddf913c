"""Where the change feed keeps its state and passes its events: in this process (memory, state in
files when ``[changes] state_dir`` is set) or in Redis, shared by every gateway process.

A poller's work is fenced: with Redis, a lease (``SET NX PX``) names the one process that polls a
source's topic, and its commit — the events and the new state — is one script that first checks
the lease, so a process that lost it can neither repeat nor half-write what the new owner does.
Events go through a Redis stream whose ids order them; every process reads the stream and hands
events to its own subscribers, and a reconnecting subscriber is replayed what followed its last
event id (within ``replay_events``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec
from redis.exceptions import RedisError

from gateway.caches.redis_client import (
    RedisClient,
    as_cache,
    redis_client,
    reply_seconds,
    slot_tag,
)
from gateway.changes.events import ChangeEvent, decode_event, encode_event
from gateway.changes.hub import event_order
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import CacheSettings

__all__ = ["STORE_ERRORS", "Backend", "MemoryBackend", "PollState", "RedisBackend"]

Deliver = Callable[[ChangeEvent], None]
# What a backend raises while its store is away (Redis down, or failing over): expected, and
# over once it is back.
STORE_ERRORS = (RedisError, OSError)
logger = logging.getLogger("gateway.changes")
LISTEN_BLOCK_MS = 2000  # how long one read of the event stream waits for events
LISTEN_RETRY_SECONDS = 1.0  # between reads of the event stream while Redis does not answer
REPLICA_WAIT_MS = 1000  # Sentinel: how long a commit waits for a replica to have it


class PollState(msgspec.Struct, kw_only=True):
    """What a poller knows of a source's topic between polls (and across restarts)."""

    watermark: str | None = None  # the latest change time seen (ISO 8601), where upstreams say
    full_at: float = 0.0  # wall time of the last full comparison
    known: dict[str, str] = msgspec.field(default_factory=dict)  # id -> last state (JSON)


class Backend(Protocol):
    async def claim(self, key: str) -> bool:
        """Whether this process may poll ``key`` now (taking or renewing its lease)."""

    async def load(self, key: str) -> PollState | None: ...

    async def commit(self, key: str, state: PollState, events: Sequence[ChangeEvent]) -> bool:
        """Store ``state`` and publish ``events``, all or nothing; False if the lease was lost."""

    async def publish(self, events: Sequence[ChangeEvent]) -> None:
        """Announce ``events`` to every process's subscribers (no poller state with them)."""

    async def replay(self, after_id: str) -> list[ChangeEvent]:
        """Kept events after ``after_id``, oldest first."""

    async def listen(self, deliver: Deliver) -> None:
        """Hand every published event to ``deliver``, until cancelled."""

    async def release(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


class EventIds:
    """Ids like a Redis stream's: milliseconds of the wall clock, then a sequence."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last = (0, 0)

    def next(self) -> str:
        milliseconds = int(self._clock.wall() * 1000)
        last_ms, last_seq = self._last
        self._last = (milliseconds, 0) if milliseconds > last_ms else (last_ms, last_seq + 1)
        return f"{self._last[0]}-{self._last[1]}"


class MemoryBackend:
    """One process does it all; its state survives a restart only with a ``state_dir``."""

    def __init__(self, *, state_dir: str | None, replay_events: int,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._dir = Path(state_dir) if state_dir else None
        self._states: dict[str, PollState] = {}
        self._kept: deque[ChangeEvent] = deque(maxlen=replay_events)
        self._ids = EventIds(clock)
        self._deliver: Deliver | None = None

    async def claim(self, key: str) -> bool:
        return True

    async def load(self, key: str) -> PollState | None:
        if key in self._states:
            return self._states[key]
        path = self._path(key)
        if path is None or not path.exists():
            return None
        return await asyncio.to_thread(_read_state, path)

    async def commit(self, key: str, state: PollState, events: Sequence[ChangeEvent]) -> bool:
        self._states[key] = state
        path = self._path(key)
        if path is not None:  # first the state: a crash then loses no event anyone could see
            await asyncio.to_thread(_write_state, path, state)
        await self.publish(events)
        return True

    async def publish(self, events: Sequence[ChangeEvent]) -> None:
        for event in events:
            published = event.with_id(self._ids.next())
            self._kept.append(published)
            if self._deliver is not None:
                self._deliver(published)

    async def replay(self, after_id: str) -> list[ChangeEvent]:
        after = event_order(after_id)
        return [event for event in self._kept if event_order(event.id) > after]

    async def listen(self, deliver: Deliver) -> None:
        self._deliver = deliver
        try:
            await asyncio.Event().wait()
        finally:
            self._deliver = None

    async def release(self, key: str) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _path(self, key: str) -> Path | None:
        return None if self._dir is None else self._dir / f"{key.replace(':', '.')}.json"


def _read_state(path: Path) -> PollState | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=PollState)
    except (OSError, msgspec.DecodeError):
        return None  # unreadable: a new baseline, as on a first start


def _write_state(path: Path, state: PollState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(msgspec.json.encode(state))
    partial.replace(path)  # atomic: a reader sees the old state or the new one


# KEYS: lease, stream, state. ARGV: owner, stream bound, state, events...
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 4, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[i])
end
redis.call('SET', KEYS[3], ARGV[3])
return 1
"""
# KEYS: stream. ARGV: stream bound, events...
_PUBLISH = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
end
return 1
"""
# KEYS: lease. ARGV: owner, milliseconds. Take a free lease or renew our own.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBackend:
    """Leases, state and the event stream in the Redis of ``[cache]`` (a single server,
    Sentinel's primary or a cluster). Every key of the feed carries one hash tag, so the
    lease-checked commit (a script over the lease, the stream and the state) runs on one
    cluster slot. Under Sentinel a commit returns once a replica has it too (``WAIT``, within
    :data:`REPLICA_WAIT_MS`): a failover then loses no committed poll, which would be announced
    a second time by the next holder of the lease."""

    def __init__(self, cache: CacheSettings | str, *, namespace: str, lease_seconds: float,
                 replay_events: int) -> None:
        cache = as_cache(cache)
        # A blocking read must end before the client's socket timeout, or every quiet read
        # fails as a timeout.
        timeout = reply_seconds(cache)
        self._block_ms = max(100, min(LISTEN_BLOCK_MS, int(timeout * 500)))
        self._redis: RedisClient = redis_client(cache, socket_timeout=timeout)
        self._replicated = cache.redis_mode == "sentinel"
        self._prefix = slot_tag(namespace, "changes")
        self._stream = f"{self._prefix}:events"
        self._lease_ms = int(lease_seconds * 1000)
        self._bound = max(replay_events, 1)
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    async def claim(self, key: str) -> bool:
        taken = await self._redis.eval(_CLAIM, 1, f"{self._prefix}:lease:{key}", self.owner,
                                       str(self._lease_ms))
        return bool(taken)

    async def load(self, key: str) -> PollState | None:
        raw = await self._redis.get(f"{self._prefix}:state:{key}")
        if raw is None:
            return None
        try:
            return msgspec.json.decode(raw, type=PollState)
        except msgspec.DecodeError:
            return None

    async def commit(self, key: str, state: PollState, events: Sequence[ChangeEvent]) -> bool:
        keys = (f"{self._prefix}:lease:{key}", self._stream, f"{self._prefix}:state:{key}")
        done = await self._redis.eval(_COMMIT, 3, *keys, self.owner, str(self._bound),
                                      msgspec.json.encode(state),
                                      *(encode_event(event) for event in events))
        await self._replicate()
        return bool(done)

    async def publish(self, events: Sequence[ChangeEvent]) -> None:
        await self._redis.eval(_PUBLISH, 1, self._stream, str(self._bound),
                               *(encode_event(event) for event in events))
        await self._replicate()

    async def _replicate(self) -> None:
        if self._replicated:
            with contextlib.suppress(RedisError):  # no replica in time: committed all the same
                await self._redis.execute_command("WAIT", 1, REPLICA_WAIT_MS)

    async def replay(self, after_id: str) -> list[ChangeEvent]:
        if event_order(after_id) < (0, 0):
            after_id = "0-0"
        rows: Any = await self._redis.xrange(self._stream, min=f"({after_id}", max="+",
                                        count=self._bound)
        return [_event(row) for row in rows]

    async def listen(self, deliver: Deliver) -> None:
        last: str | None = None
        while True:
            try:
                if last is None:  # from the newest event on: what came before is replay's
                    newest: Any = await self._redis.xrevrange(self._stream, count=1)
                    last = _text(newest[0][0]) if newest else "0-0"
                answer: Any = await self._redis.xread({self._stream: last},
                                                      block=self._block_ms, count=100)
            except (RedisError, OSError) as exc:  # Redis away: read on where we were, later
                logger.warning("change stream unreadable: %s", type(exc).__name__)
                await asyncio.sleep(LISTEN_RETRY_SECONDS)
                continue
            for _stream, rows in answer or []:
                for row in rows:
                    last = _text(row[0])
                    with contextlib.suppress(msgspec.DecodeError, ValueError):
                        deliver(_event(row))

    async def release(self, key: str) -> None:
        await self._redis.eval(_RELEASE, 1, f"{self._prefix}:lease:{key}", self.owner)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _event(row: Any) -> ChangeEvent:
    event_id, fields = row
    return decode_event(fields[b"e"], _text(event_id))
