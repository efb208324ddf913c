"""The emulators' data, changeable at run time: one mutable copy of the seed per app.

Each emulator app owns an :class:`EmulatorData` (``app.state.data``): the seeded demo data at start,
then whatever a test, a benchmark or ``demo --churn`` changed in it. A change made to one app never
reaches another app, and :meth:`EmulatorData.reset` brings the seed back. Example::

    data = app.state.data
    group_id = data.create_group(name="Sunglasses 2026")
    data.update_group(group_id, name="Sunglasses 2027")
    data.delete_group(group_id)  # CareCloud: state 0; Joptic, Axim: gone
    data.reset()

The same operations are served over HTTP under ``/_emulator/`` (see :func:`control`)::

    POST   /_emulator/groups          <- {"name": "...", ...}  -> 201 {"id": "..."}
    PATCH  /_emulator/groups/{id}     <- {"name": "...", ...}  -> 200 {"id": "..."}
    DELETE /_emulator/groups/{id}[?purge=true]                 -> 200 {"id": "..."}
    POST   /_emulator/products        <- {"name": "...", ...}  -> 201 {"id": "..."}
    PATCH  /_emulator/products/{id}   <- {...}                 -> 200 {"id": "..."}
    DELETE /_emulator/products/{id}                            -> 200 {"id": "..."}
    DELETE /_emulator/data                                     -> 200, the seed again

Errors: :class:`ChangeError`, answered as JSON ``{"error": "..."}``::

    ChangeError
    ├── BadChange   400: a field unknown, of the wrong type or out of bounds; a bad body
    └── UnknownId   404: no such group or product, or a kind without groups / products

Every change is stamped by a :class:`ChangeClock`: the app's ``now`` truncated to the upstream's
precision, but never earlier than the previous stamp plus one unit nor than the newest seeded
change time, so a reader comparing change times always sees a change as the newest.

Readers (the upstream endpoints, on the event loop) take an immutable snapshot; writers (any
thread) replace it under a lock, so a reader never sees half a change.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "MAX_ADDED",
    "MAX_BODY_BYTES",
    "MAX_ID",
    "MAX_TEXT",
    "BadChange",
    "ChangeClock",
    "ChangeError",
    "Check",
    "Clock",
    "EmulatorData",
    "UnknownId",
    "boolean",
    "checked",
    "choice",
    "control",
    "number",
    "text",
    "utc_now",
]

Clock = Callable[[], datetime]
# (field name, value) -> the value to store; raises BadChange.
Check = Callable[[str, Any], Any]

MAX_ADDED = 10_000  # items an app may hold beyond its seed: creating is bounded like any input
MAX_BODY_BYTES = 64 * 1024
MAX_TEXT = 500  # characters of any text field
MAX_ID = 100  # characters of an id in a control path, or of an id-like field
_MICRO = timedelta(microseconds=1)


def utc_now() -> datetime:
    """The default clock of every emulator."""
    return datetime.now(UTC)


class ChangeError(Exception):
    """A change the data refuses; ``status`` is the HTTP status the control API answers."""

    status: ClassVar[int] = 400


class BadChange(ChangeError):
    status = 400


class UnknownId(ChangeError):
    status = 404


class ChangeClock:
    """Change times that never go backwards, in steps of the upstream's precision."""

    def __init__(self, now: Clock, resolution: timedelta, latest_seeded: datetime) -> None:
        self._now = now
        self._resolution = resolution
        self._last = _utc(latest_seeded)

    def next(self) -> datetime:
        """The time of a change made now (call it once per change, under the data's lock)."""
        moment = _utc(self._now())
        moment -= timedelta(microseconds=moment.microsecond % (self._resolution // _MICRO))
        self._last = max(moment, self._last + self._resolution)
        return self._last


def _utc(moment: datetime) -> datetime:
    """Aware and in UTC (a naive time is taken as UTC)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- field checks ----------------------------------------------------------------------------


def text(*, nullable: bool = False, max_length: int = MAX_TEXT) -> Check:
    """A string of 1..``max_length`` characters (or null when ``nullable``)."""

    def check(name: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > max_length:
            null = " or null" if nullable else ""
            raise BadChange(f"{name}: expected a non-blank string of at most {max_length} "
                            f"characters{null}, got {_shown(value)}")
        return value

    return check


def choice(*allowed: Any) -> Check:
    """One of ``allowed``, of the same type (so ``true`` is not taken for 1)."""

    def check(name: str, value: Any) -> Any:
        if not any(type(value) is type(a) and value == a for a in allowed):
            options = ", ".join(json.dumps(a) for a in allowed)
            raise BadChange(f"{name}: expected one of {options}, got {_shown(value)}")
        return value

    return check


def boolean() -> Check:
    return choice(True, False)


def number(low: float, high: float) -> Check:
    """A JSON number in ``low..high``."""

    def check(name: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not low <= value <= high:
            raise BadChange(f"{name}: expected a number in {low:g}..{high:g}, got {_shown(value)}")
        return value

    return check


def _shown(value: Any) -> str:
    shown = json.dumps(value, default=repr)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def checked(fields: Mapping[str, Check], values: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``values`` checked field by field; an unknown field names those the kind accepts."""
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise BadChange(f"unknown field(s) of {what}: {', '.join(unknown)} "
                        f"(known: {', '.join(fields)})")
    return {name: fields[name](name, value) for name, value in values.items()}


# -- the data --------------------------------------------------------------------------------


class EmulatorData:
    """One app's data. Subclasses (one per kind) declare what can change and implement the
    ``_add_*``/``_change_*``/``_remove_*`` hooks, which run under the lock; this class checks the
    fields, bounds the size and takes the lock. A kind without groups (Comestri) or without
    products (CareCloud, Joptic) declares no fields for them: every call about them is an
    :class:`UnknownId`. A subclass sets up its seeded data before calling ``__init__`` here,
    which measures it (the bound on growth counts from it).
    """

    kind: ClassVar[str]
    group_fields: ClassVar[Mapping[str, Check]] = {}
    product_fields: ClassVar[Mapping[str, Check]] = {}
    product_create_fields: ClassVar[Mapping[str, Check]] = {}  # accepted only when creating

    def __init__(self, *, now: Clock, resolution: timedelta, latest_seeded: datetime) -> None:
        self._lock = threading.Lock()
        self._clock = ChangeClock(now, resolution, latest_seeded)
        self._seed_size = self._size()

    @property
    def has_groups(self) -> bool:
        return bool(self.group_fields)

    @property
    def has_products(self) -> bool:
        return bool(self.product_fields)

    # public operations ----------------------------------------------------------------------

    def create_group(self, /, *, name: str, **fields: Any) -> str:
        """Add a group named ``name`` (other fields by their upstream names); its id."""
        values = checked(self._fields("group"), {"name": name, **fields}, self._what("group"))
        with self._lock:
            self._make_room()
            return self._add_group(values)

    def update_group(self, group_id: str, /, **fields: Any) -> None:
        """Change the group's fields and bump its change time."""
        values = checked(self._fields("group"), fields, self._what("group"))
        with self._lock:
            self._change_group(group_id, values)

    def delete_group(self, group_id: str, /, *, purge: bool = False) -> None:
        """Delete the group the upstream's way (CareCloud: ``state`` 0, still listed; the
        others: gone); ``purge`` makes it disappear whatever the kind."""
        self._fields("group")
        with self._lock:
            self._remove_group(group_id, purge)

    def create_product(self, /, *, name: str, **fields: Any) -> str:
        """Add a product named ``name`` (Axim: ``group_id=`` says where); its id."""
        allowed = {**self._fields("product"), **self.product_create_fields}
        values = checked(allowed, {"name": name, **fields}, self._what("product"))
        with self._lock:
            self._make_room()
            return self._add_product(values)

    def update_product(self, product_id: str, /, **fields: Any) -> None:
        """Change the product's fields and bump its change time."""
        values = checked(self._fields("product"), fields, self._what("product"))
        with self._lock:
            self._change_product(product_id, values)

    def delete_product(self, product_id: str, /) -> None:
        """Make the product disappear (Comestri: its child SKUs with it)."""
        self._fields("product")
        with self._lock:
            self._remove_product(product_id)

    def reset(self) -> None:
        """Back to the seeded data (change times keep going forward, ids are not reused)."""
        with self._lock:
            self._restore_seed()

    def group_ids(self) -> list[str]:
        """Ids of the groups not deleted (CareCloud: ``state`` 1)."""
        return []

    def product_ids(self) -> list[str]:
        """Ids of the products."""
        return []

    # helpers for the kinds ------------------------------------------------------------------

    def _stamp(self) -> datetime:
        """The time of the change being made (under the lock)."""
        return self._clock.next()

    def _fields(self, entity: str) -> Mapping[str, Check]:
        fields = self.group_fields if entity == "group" else self.product_fields
        if not fields:
            raise UnknownId(f"{self.kind} has no {entity}s")
        return fields

    def _what(self, entity: str) -> str:
        article = "an" if self.kind[0] in "aeiou" else "a"
        return f"{article} {self.kind} {entity}"

    def _make_room(self) -> None:
        if self._size() >= self._seed_size + MAX_ADDED:
            raise BadChange(f"this {self.kind} emulator holds at most {MAX_ADDED} items beyond "
                            "its seed: DELETE /_emulator/data resets it")

    def _unknown(self, entity: str, item_id: object) -> UnknownId:
        return UnknownId(f"no {self.kind} {entity} {str(item_id)[:MAX_ID]!r}")

    # hooks (under the lock) -----------------------------------------------------------------

    def _size(self) -> int:
        """Groups and products held, deleted-but-listed ones included."""
        raise NotImplementedError

    def _restore_seed(self) -> None:
        raise NotImplementedError

    def _add_group(self, values: dict[str, Any]) -> str:
        raise NotImplementedError

    def _change_group(self, group_id: str, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def _remove_group(self, group_id: str, purge: bool) -> None:
        raise NotImplementedError

    def _add_product(self, values: dict[str, Any]) -> str:
        raise NotImplementedError

    def _change_product(self, product_id: str, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def _remove_product(self, product_id: str) -> None:
        raise NotImplementedError


# -- the HTTP control API --------------------------------------------------------------------


async def control(data: EmulatorData, request: Request, what: str) -> Response | None:
    """Answer a data control request (``what``: the path after ``/_emulator/``), or None when
    ``what`` and the method name no data endpoint."""
    collection, _, item_id = what.partition("/")
    method = request.method
    if collection == "data" and not item_id:
        if method != "DELETE":
            return None
        data.reset()
        return JSONResponse({"reset": True})
    if collection not in ("groups", "products"):
        return None
    entity = collection[:-1]
    if not (data.has_groups if entity == "group" else data.has_products):
        return JSONResponse({"error": f"{data.kind} has no {collection}"}, status_code=404)
    try:
        if not item_id and method == "POST":
            fields = _named(await _json_body(request))
            if entity == "group":
                return JSONResponse({"id": data.create_group(**fields)}, status_code=201)
            return JSONResponse({"id": data.create_product(**fields)}, status_code=201)
        if item_id and method == "PATCH":
            fields = await _json_body(request)
            update = data.update_group if entity == "group" else data.update_product
            update(_bounded_id(data, entity, item_id), **fields)
            return JSONResponse({"id": item_id})
        if item_id and method == "DELETE":
            purge = _flag(request.query_params.get("purge"), "purge")
            if entity == "group":
                data.delete_group(_bounded_id(data, entity, item_id), purge=purge)
            else:
                data.delete_product(_bounded_id(data, entity, item_id))
            return JSONResponse({"id": item_id})
    except ChangeError as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    return None


def _bounded_id(data: EmulatorData, entity: str, item_id: str) -> str:
    if len(item_id) > MAX_ID:
        raise UnknownId(f"no {data.kind} {entity} {item_id[:MAX_ID]!r}...")
    return item_id


async def _json_body(request: Request) -> dict[str, Any]:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise BadChange(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        payload = json.loads(body or b"{}")
    except ValueError as exc:
        raise BadChange(f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise BadChange("the body must be a JSON object of fields")
    return payload


def _named(fields: dict[str, Any]) -> dict[str, Any]:
    if "name" not in fields:
        raise BadChange("name: required (a non-blank string)")
    return fields


def _flag(value: str | None, name: str) -> bool:
    if value is None:
        return False
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise BadChange(f"{name}: expected true or false, got {value[:20]!r}")
