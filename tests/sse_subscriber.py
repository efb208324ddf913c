"""An SSE subscriber as a resilient client runs one: in a thread, reconnecting with
``Last-Event-ID`` whenever its stream ends (a replica drained or killed, a failover), keeping
every event it received in order, and a log of its streams for a failure's message."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
from httpx_sse import connect_sse

__all__ = ["Subscriber"]


class Subscriber:
    """``field``'s events of ``query`` at ``url``'s ``/graphql``, through every reconnect."""

    def __init__(self, url: str, query: str, field: str) -> None:
        self.url = url
        self.query = query
        self.field = field
        self.events: list[dict[str, Any]] = []
        self.streams = 0
        self.log: list[str] = []  # each stream: who served it (a balancer's X-Served-By), events
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Subscriber:
        self._thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(10, read=None)) as client:
            while not self.closed.is_set():
                headers = {"Last-Event-ID": self.events[-1]["eventId"]} if self.events else {}
                try:
                    with connect_sse(client, "POST", f"{self.url}/graphql", headers=headers,
                                     json={"query": self.query}) as source:
                        self.streams += 1
                        self.log.append(f"{source.response.headers.get('x-served-by')}:"
                                        f"{source.response.status_code}")
                        for sse in source.iter_sse():
                            self._heard(sse.event, sse.data)
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)

    def _heard(self, kind: str, data: str) -> None:
        if kind == "next":
            event = (json.loads(data).get("data") or {}).get(self.field)
            if event:
                self.events.append(event)
                self.log.append(event["eventId"])
        elif kind != "complete":
            self.log.append(kind)

    def names(self) -> list[tuple[str, str]]:
        return [(e["change"], e["node"]["name"]) for e in self.events]

    def close(self) -> None:
        self.closed.set()
