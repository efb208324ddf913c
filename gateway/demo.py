"""The demo: the four emulators and a gateway configured for them, in one process.

``python -m gateway demo`` (what ``make run`` runs) serves the gateway on ``--port`` and each
emulator on a port the OS picks; the gateway's configuration is built from those ports. With
``--churn``, a :class:`Churn` changes a random emulator's data every few seconds, so a newcomer sees
change events arrive.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

from gateway.config import Config, parse_config
from gateway.edge.serving import BoundApp, bind
from gateway.emulators import DEMO_TOKENS, KINDS, create_emulator, emulator_data
from gateway.emulators.changes import ChangeError, EmulatorData
from gateway.emulators.common import FaultPlan

__all__ = ["DEMO_CORS_REGEX", "Churn", "demo_config", "demo_servers"]

# Browser frontends on any local port may call the demo gateway.
DEMO_POLL_SECONDS = 2.0  # the demo's change feed: every source asked what changed this often
DEMO_CORS_REGEX = r"^http://(localhost|127\.0\.0\.1)(:\d+)?$"


def demo_config(urls: Mapping[str, str], *, host: str = "127.0.0.1", port: int = 8000,
                defaults: Mapping[str, Any] | None = None, cache_url: str = "memory://",
                request_timeout: float = 15.0) -> Config:
    """A gateway configuration with one source per emulator, named after its kind.

    ``defaults`` is the ``[defaults]`` table (source tuning: TTLs, retries, breaker…). Cursors
    are signed with a secret made at start (the demo's cursors die with it).
    """
    return parse_config(
        {
            # The development profile: GraphiQL, introspection, suggestions, a detailed
            # /readyz, GET without a preflight header; a cursor secret of its own per process.
            "server": {"profile": "development", "host": host, "port": port,
                       "cors_origin_regex": DEMO_CORS_REGEX,
                       "request_timeout_seconds": request_timeout, "access_log": True,
                       "cursor_secret": secrets.token_urlsafe(32)},
            "cache": {"url": cache_url},
            "defaults": dict(defaults or {}),
            "sources": [
                {"name": kind, "kind": kind, "base_url": urls[kind], "token": DEMO_TOKENS[kind]}
                for kind in KINDS
            ],
        },
        origin="<demo>",
    )


def demo_servers(
    *, host: str = "127.0.0.1", port: int = 8000, latency_ms: int = 0
) -> tuple[Config, dict[str, BoundApp]]:
    """The emulators (with ``latency_ms`` added to every response) and their bound sockets."""
    emulators = {kind: BoundApp(create_emulator(kind), bind("127.0.0.1", 0)) for kind in KINDS}
    for bound in emulators.values():
        faults: FaultPlan = bound.app.state.faults  # type: ignore[attr-defined]
        faults.set(latency_ms=latency_ms)
    # Every source watched, so subscriptions work in GraphiQL (`--churn` makes changes).
    config = demo_config({kind: b.url for kind, b in emulators.items()}, host=host, port=port,
                         defaults={"poll_interval_seconds": DEMO_POLL_SECONDS})
    return config, emulators


class Churn:
    """Every ``seconds``, one random change to a random emulator's data, told in one line.

    The change is made through the emulators' in-process data API: create a group (or a
    product, where the kind has products), rename one, or delete one (CareCloud: ``state`` 0).
    Example::

        churn = Churn({kind: emulator_data(b.app) for kind, b in emulators.items()}, 5.0)
        churn.start()  # prints e.g. 'churn: joptic renamed group clx… to "Churn group 3"'
    """

    def __init__(self, data: Mapping[str, EmulatorData], seconds: float, *,
                 rng: random.Random | None = None, say: Callable[[str], None] | None = None
                 ) -> None:
        self.data = dict(data)
        self.seconds = seconds
        self._rng = rng or random.Random()
        self._say = say or (lambda line: print(line, flush=True))
        self._made = 0  # numbers the names churn gives
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-churn", daemon=True)

    @classmethod
    def of(cls, emulators: Mapping[str, BoundApp], seconds: float) -> Churn:
        """A churn over the demo's emulators."""
        return cls({kind: emulator_data(b.app) for kind, b in emulators.items()}, seconds)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            self._say(self.change())

    def change(self) -> str:
        """Make one random change now; the line that tells it."""
        kind = self._rng.choice(sorted(self.data))
        data = self.data[kind]
        entity = self._rng.choice([e for e, has in (("group", data.has_groups),
                                                    ("product", data.has_products)) if has])
        ids = data.group_ids() if entity == "group" else data.product_ids()
        action = self._rng.choice(("create", "rename", "delete")) if ids else "create"
        self._made += 1
        name = f"Churn {entity} {self._made}"
        try:
            return f"churn: {kind} {self._apply(data, entity, action, ids, name)}"
        except ChangeError as exc:
            return f"churn: {kind} could not {action} a {entity}: {exc}"

    def _apply(self, data: EmulatorData, entity: str, action: str, ids: list[str],
               name: str) -> str:
        if action == "create" and entity == "group":
            return f'created group {data.create_group(name=name)} "{name}"'
        if action == "create" and "group_id" in data.product_create_fields:
            group_id = self._rng.choice(data.group_ids() or ["none"])  # Axim: in a group
            new_id = data.create_product(name=name, group_id=group_id)
            return f'created product {new_id} "{name}" in group {group_id}'
        if action == "create":
            return f'created product {data.create_product(name=name)} "{name}"'
        target = self._rng.choice(ids)
        if action == "rename":
            update = data.update_group if entity == "group" else data.update_product
            update(target, name=name)
            return f'renamed {entity} {target} to "{name}"'
        if entity == "group":
            data.delete_group(target)
        else:
            data.delete_product(target)
        return f"deleted {entity} {target}" + (" (state 0)" if data.kind == "carecloud" else "")
