"""What every emulator shares: a request log, fault injection and JSON error helpers.

Every emulator app is wrapped by :class:`EmulatorMiddleware`, which

* records each upstream request (method, path, query, selected headers, start and end times,
  status, the answer body's size in bytes) in a :class:`RequestLog` — tests assert upstream call
  counts and overlap from it, the benchmark the upstream bytes a query costs;
* applies the current :class:`Fault` plan before the app sees the request: added latency, an
  error status (optionally at a seeded random rate), 429 with ``Retry-After``, a hang, or a
  malformed JSON body, optionally for the next N requests only;
* serves a small control API under ``/_emulator/`` (never logged, no auth) so that a test or a
  benchmark can drive an emulator running in another process::

      GET    /_emulator/requests      -> {"requests": [...]}
      DELETE /_emulator/requests      -> clears the log
      PUT    /_emulator/faults        <- {"latency_ms": 100, "status": 503, "rate": 0.5, "seed": 7}
      DELETE /_emulator/faults        -> no faults
      PUT    /_emulator/tenants       <- {"token": "other-token", "marker": "[other]"}
      DELETE /_emulator/tenants       -> only the demo token again
      POST   /_emulator/groups        <- {"name": "New group"}  -> 201 {"id": "..."}
      PATCH  /_emulator/groups/{id}   <- {"name": "Renamed"}
      DELETE /_emulator/groups/{id}   (products likewise; DELETE /_emulator/data: the seed again)

  (the data endpoints are :func:`gateway.emulators.changes.control`'s);

* accepts **tenant tokens** besides its own: a request with one sees the same data, every
  ``name`` in the answer suffixed with the tenant's marker — another account's view, so a test
  can tell which credential an answer was fetched with (the request log keeps the header as
  sent).

In process, the same objects are reachable as ``app.state.log``, ``app.state.faults``,
``app.state.tenants`` and ``app.state.data`` (an :class:`~gateway.emulators.changes.EmulatorData`).
The emulators share no code with the gateway's adapters on purpose: a misreading of an upstream
document must not hide in both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.emulators.changes import EmulatorData, control

__all__ = [
    "EmulatorMiddleware",
    "Fault",
    "FaultPlan",
    "RecordedRequest",
    "RequestLog",
    "Tenants",
    "bearer_token",
    "emulator_app",
    "json_error",
]

CONTROL_PREFIX = "/_emulator/"
# Headers worth keeping in the log: what a test may want to assert about the gateway's requests.
LOGGED_HEADERS = ("accept-language", "authorization", "accesstoken", "user-agent", "x-request-id",
                  "traceparent")


@dataclass(frozen=True, kw_only=True)
class RecordedRequest:
    """One request as the emulator saw it."""

    method: str
    path: str
    query: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    started: float  # time.monotonic() when the request arrived
    finished: float  # time.monotonic() when the response was sent (or the request given up)
    status: int
    response_bytes: int = 0  # the answer body's length as sent (0: none sent, e.g. a hang)

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or None."""
        values = self.params.get(name)
        return values[0] if values else None


class RequestLog:
    """Thread-safe list of :class:`RecordedRequest` (tests read it from another thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RecordedRequest] = []
        self.arrived = 0  # requests received, answered or not yet (a record comes at the end)

    def arrive(self) -> None:
        with self._lock:
            self.arrived += 1

    def append(self, record: RecordedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self.arrived = 0

    @property
    def records(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


@dataclass(frozen=True, kw_only=True)
class Fault:
    """A fault plan. Zero values mean "no fault" for that aspect.

    ``status`` with ``rate`` < 1 fails that share of requests, drawn from ``random.Random(seed)``
    so a test that uses it is repeatable. ``count`` limits the plan to the next N requests.
    """

    latency_ms: int = 0
    status: int = 0  # error status to answer, e.g. 503, 429, 500
    rate: float = 1.0  # share of requests that get ``status`` / ``malformed`` / ``hang``
    retry_after: int | None = None  # seconds, sent with the error status (429/503)
    hang: bool = False  # never answer (until the client gives up)
    malformed: bool = False  # answer 200 with a body that is not valid JSON
    count: int | None = None  # only the next N requests, then no fault
    seed: int = 0

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = set(payload) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**payload)


@dataclass
class _Decision:
    latency: float = 0.0
    status: int = 0
    retry_after: int | None = None
    hang: bool = False
    malformed: bool = False


@dataclass
class FaultPlan:
    """The emulator's current fault, and the seeded generator that decides which requests fail."""

    fault: Fault = field(default_factory=Fault)
    _rng: random.Random = field(default_factory=lambda: random.Random(0))
    _remaining: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, fault: Fault | None = None, **changes: Any) -> None:
        """Install a fault (``plan.set(Fault(status=503))`` or ``plan.set(status=503)``)."""
        fault = fault or Fault(**changes)
        with self._lock:
            self.fault = fault
            self._rng = random.Random(fault.seed)
            self._remaining = fault.count

    def clear(self) -> None:
        self.set(Fault())

    def decide(self) -> _Decision:
        with self._lock:
            fault = self.fault
            if self._remaining is not None:
                if self._remaining <= 0:
                    return _Decision()
                self._remaining -= 1
            hit = fault.rate >= 1.0 or self._rng.random() < fault.rate
        decision = _Decision(latency=fault.latency_ms / 1000)
        if hit:
            decision.status = fault.status
            decision.retry_after = fault.retry_after
            decision.hang = fault.hang
            decision.malformed = fault.malformed
        return decision


def json_error(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """A JSON error response (every emulator error has a JSON body, as the upstreams do)."""
    return JSONResponse(body, status_code=status, headers=headers)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def parse_list(value: str | None) -> list[str]:
    """Split a comma-joined parameter into its non-empty, stripped parts."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


class Tenants:
    """Tokens of other accounts: token → the marker added to every name their answers carry."""

    def __init__(self) -> None:
        self._markers: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, token: str, marker: str) -> None:
        with self._lock:
            self._markers[token] = marker

    def clear(self) -> None:
        with self._lock:
            self._markers.clear()

    def marker(self, token: str | None) -> str | None:
        with self._lock:
            return self._markers.get(token) if token else None


def _marked(value: Any, marker: str) -> Any:
    """``value`` with every string ``name`` suffixed by ``marker``."""
    if isinstance(value, dict):
        return {k: (f"{v} {marker}" if k == "name" and isinstance(v, str) else _marked(v, marker))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_marked(v, marker) for v in value]
    return value


class EmulatorMiddleware:
    """Request log, fault injection and the ``/_emulator/`` control API around one emulator."""

    def __init__(self, app: ASGIApp, *, kind: str, log: RequestLog, faults: FaultPlan,
                 tenants: Tenants | None = None, token: str | None = None,
                 data: EmulatorData | None = None) -> None:
        self.app = app
        self.kind = kind
        self.log = log
        self.faults = faults
        self.tenants = tenants or Tenants()
        self.data = data
        self.token = token  # the emulator's own token, which a tenant's stands in for
        # Where the kind reads its token: Axim's raw accessToken header, the others' Bearer.
        self.auth_header = b"accesstoken" if kind == "axim" else b"authorization"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(CONTROL_PREFIX):
            await self._control(scope, receive, send)
            return
        started = time.monotonic()
        self.log.arrive()
        status_box = [0]
        sent_bytes = [0]

        logged = [False]

        def record() -> None:
            if not logged[0]:
                logged[0] = True
                self.log.append(_record(scope, started, status_box[0], sent_bytes[0]))

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
            elif message["type"] == "http.response.body":
                sent_bytes[0] += len(message.get("body", b""))
                if not message.get("more_body"):
                    record()  # before the client can see the end of the answer
            await send(message)

        try:
            await self._serve(scope, receive, recording_send)
        finally:
            record()  # a hang or an aborted request is logged too

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        decision = self.faults.decide()
        if decision.latency:
            await asyncio.sleep(decision.latency)
        if decision.hang:
            # Answer nothing until the client gives up (then the request is logged).
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        if decision.status:
            await self._fault_response(decision).__call__(scope, receive, send)
            return
        if decision.malformed:
            body = b'{"data": [{"id": "1", "name": "trunc'
            await Response(body, media_type="application/json")(scope, receive, send)
            return
        marker = self.tenants.marker(self._token(scope))
        if marker is not None and self.token is not None:
            await self._as_tenant(scope, receive, send, marker)
            return
        await self.app(scope, receive, send)

    def _token(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name.lower() == self.auth_header:
                text = value.decode("latin-1").strip()
                if self.auth_header == b"authorization":
                    scheme, _, text = text.partition(" ")
                    text = text.strip() if scheme.lower() == "bearer" else ""
                return text or None
        return None

    async def _as_tenant(self, scope: Scope, receive: Receive, send: Send, marker: str) -> None:
        """Serve as the emulator's own token, then mark every name of a JSON answer."""
        own = (self.token or "").encode()
        value = own if self.auth_header == b"accesstoken" else b"Bearer " + own
        headers = [(n, v) for n, v in scope["headers"] if n.lower() != self.auth_header]
        start: dict[str, Any] = {}
        body = bytearray()

        async def buffered(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app({**scope, "headers": [*headers, (self.auth_header, value)]}, receive,
                       buffered)
        content = bytes(body)
        if start.get("status") == 200:
            with contextlib.suppress(ValueError):
                content = json.dumps(_marked(json.loads(content), marker)).encode()
        response_headers = [(n, v) for n, v in start.get("headers", [])
                            if n.lower() != b"content-length"]
        await send({"type": "http.response.start", "status": start.get("status", 500),
                    "headers": [*response_headers,
                                (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})

    def _fault_response(self, decision: _Decision) -> Response:
        headers = {}
        if decision.retry_after is not None:
            headers["Retry-After"] = str(decision.retry_after)
        messages = {
            429: "Too many requests - more than the resource limit.",
            500: "Internal server error.",
            502: "Bad gateway.",
            503: "Service temporarily unavailable.",
            504: "Gateway timeout.",
        }
        message = messages.get(decision.status, "Injected fault.")
        return json_error(
            decision.status, {"error": {"code": decision.status, "message": message}}, headers
        )

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        what = scope["path"][len(CONTROL_PREFIX) :].strip("/")
        response = await control(self.data, request, what) if self.data is not None else None
        if response is None:
            response = await self._log_fault_tenant_control(request, what)
        await response(scope, receive, send)

    async def _log_fault_tenant_control(self, request: Request, what: str) -> Response:
        response: Response
        if what == "requests" and request.method == "GET":
            response = JSONResponse(
                {"kind": self.kind, "requests": [asdict(r) for r in self.log.records]}
            )
        elif what == "requests" and request.method == "DELETE":
            self.log.clear()
            response = JSONResponse({"cleared": True})
        elif what == "faults" and request.method in ("PUT", "POST"):
            try:
                self.faults.set(Fault.from_json(json.loads(await request.body() or b"{}")))
            except (ValueError, TypeError) as exc:
                response = json_error(400, {"error": str(exc)})
            else:
                response = JSONResponse({"fault": asdict(self.faults.fault)})
        elif what == "faults" and request.method == "DELETE":
            self.faults.clear()
            response = JSONResponse({"fault": None})
        elif what == "tenants" and request.method in ("PUT", "POST"):
            payload = json.loads(await request.body() or b"{}")
            token, marker = payload.get("token"), payload.get("marker")
            if not (isinstance(token, str) and token and isinstance(marker, str) and marker):
                response = json_error(400, {"error": "give a token and a marker"})
            else:
                self.tenants.add(token, marker)
                response = JSONResponse({"tenant": marker})
        elif what == "tenants" and request.method == "DELETE":
            self.tenants.clear()
            response = JSONResponse({"tenants": None})
        else:
            response = json_error(404, {"error": f"no control endpoint {request.method} {what}"})
        return response


def _record(scope: Scope, started: float, status: int, response_bytes: int
            ) -> RecordedRequest:
    query = scope.get("query_string", b"").decode("latin-1")
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
    }
    return RecordedRequest(
        method=scope["method"],
        path=scope["path"],
        query=query,
        params=parse_qs(query, keep_blank_values=True),
        headers={name: headers[name] for name in LOGGED_HEADERS if name in headers},
        started=started,
        finished=time.monotonic(),
        status=status,
        response_bytes=response_bytes,
    )


def emulator_app(kind: str, routes: list[BaseRoute], *, data: EmulatorData,
                 token: str | None = None) -> Starlette:
    """A Starlette app for one upstream kind, with log, faults and JSON 404/405 bodies.

    ``app.state.log`` is its :class:`RequestLog`, ``app.state.faults`` its :class:`FaultPlan`,
    ``app.state.tenants`` its :class:`Tenants` (other accounts' tokens; ``token``, the app's
    own, is what they stand in for), ``app.state.data`` its ``data`` (what ``routes`` serve,
    changeable through the control API).
    """
    log, faults, tenants = RequestLog(), FaultPlan(), Tenants()

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return json_error(
            status, {"error": {"code": status, "message": str(getattr(exc, "detail", exc))}}
        )

    app = Starlette(
        routes=routes,
        middleware=[Middleware(EmulatorMiddleware, kind=kind, log=log, faults=faults,
                               tenants=tenants, token=token, data=data)],
        exception_handlers={HTTPException: http_error},
    )
    app.state.kind = kind
    app.state.log = log
    app.state.faults = faults
    app.state.tenants = tenants
    app.state.data = data
    return app
