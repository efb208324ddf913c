"""Emulator of CareCloud's ``GET /product-groups`` (seed doc 000, names from DESIGN.md).

The upstream pages with ``count`` (>= 1, default 100, no maximum) and ``offset`` (>= 0, default
0), sorts by ``sort_field`` / ``sort_direction``, filters by ``name`` (case-insensitive part of
the name), ``store_id``, ``code`` and ``external_id`` (exact), localises names by
``Accept-Language`` (default ``cs, en-gb;q=0.8``) and answers
``{"data": {"product_groups": [...], "total_items": N}}``. 429 and 503 come from fault injection
(:mod:`gateway.emulators.common`).

Choices where the document is silent (see ``docs/emulators/carecloud.md``):

* auth is ``Authorization: Bearer <token>``; a missing or wrong token is a 401 with the same
  ``{"error": {"code", "message"}}`` body as every other CareCloud error;
* a bad ``count``/``offset``/``sort_field``/``sort_direction`` is a 400 naming the parameter;
  a parameter given with an empty value counts as not given; unknown parameters are ignored;
* without ``sort_field`` the order is ``product_group_id`` (compared as numbers) in
  ``sort_direction``; with it, ties are broken by ``product_group_id`` ascending; nulls sort last
  ascending and first descending (the exact reverse); strings compare by code point;
* names exist in ``cs`` and ``en``; the best-q supported primary subtag wins, else ``cs``;
  ``name`` filters and ``sort_field=name`` sorts on the name in the response language;
* deleted groups (``state`` 0) are listed like the others;
* ``last_change`` is in UTC; a change made through the control API (:class:`CareCloudData`)
  sets it to the app's ``now``.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.emulators.changes import (
    MAX_ID,
    Check,
    Clock,
    EmulatorData,
    UnknownId,
    choice,
    text,
    utc_now,
)
from gateway.emulators.common import bearer_token, emulator_app, json_error

__all__ = [
    "DEFAULT_ACCEPT_LANGUAGE",
    "DEMO_TOKEN",
    "LANGUAGES",
    "SORT_FIELDS",
    "CareCloudData",
    "Group",
    "create_app",
    "demo_groups",
    "negotiate_language",
]

DEMO_TOKEN = "demo-carecloud-token"
DEFAULT_ACCEPT_LANGUAGE = "cs, en-gb;q=0.8"
LANGUAGES: tuple[str, ...] = ("cs", "en")  # the first is the fallback
SORT_FIELDS: tuple[str, ...] = (
    "product_group_id", "name", "parent_product_group_id", "parent_external_id", "code",
    "external_id", "store_id", "last_change", "state",
)
DEFAULT_COUNT = 100
SEED = 20240611
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # last_change, in UTC
_NUMERIC_FIELDS = frozenset({"product_group_id", "parent_product_group_id"})
_INTEGER = re.compile(r"[0-9]+")

_ROOTS: tuple[tuple[str, str], ...] = (
    ("Brýle", "Glasses"), ("Sluneční brýle", "Sunglasses"), ("Kontaktní čočky", "Contact lenses"),
    ("Brýlové obruby", "Spectacle frames"), ("Brýlové čočky", "Spectacle lenses"),
    ("Roztoky", "Solutions"), ("Pouzdra", "Cases"), ("Čisticí prostředky", "Cleaning products"),
    ("Sportovní brýle", "Sports glasses"), ("Lupy", "Magnifiers"), ("Oční kapky", "Eye drops"),
    ("Dárkové poukazy", "Gift vouchers"), ("Služby", "Services"), ("Příslušenství", "Accessories"),
    ("Ochranné brýle", "Safety glasses"), ("Brýle na čtení", "Reading glasses"),
    ("Plavecké brýle", "Swimming goggles"), ("Lyžařské brýle", "Ski goggles"),
    ("Řetízky a šňůrky", "Chains and cords"), ("Počítačové brýle", "Computer glasses"),
)
_ROOT_VARIANTS: tuple[tuple[str, str], ...] = (("", ""), (" \u2013 výprodej", " \u2013 clearance"))
_QUALIFIERS: tuple[tuple[str, str], ...] = (
    ("Dámské", "Women's"), ("Pánské", "Men's"), ("Unisex", "Unisex"), ("Dětské", "Kids'"),
    ("Kovové", "Metal"), ("Plastové", "Plastic"), ("Polarizační", "Polarised"),
    ("Jednodenní", "Daily"), ("Měsíční", "Monthly"), ("Prémiové", "Premium"),
)
_OTHER: tuple[str, str] = ("Ostatní", "Other")  # deliberately repeated: duplicate names exist
_BRANDS: tuple[str, ...] = (
    "Ray-Ban", "Oakley", "Tom Ford", "Silhouette", "Zeiss", "Essilor", "Hoya", "Acuvue",
    "Air Optix", "Dailies", "Carrera", "Police", "Lindberg", "Rodenstock",
)


@dataclass(frozen=True, kw_only=True)
class Group:
    """One demo product group, with its name in every supported language."""

    product_group_id: str
    names: dict[str, str]
    parent_product_group_id: str | None
    parent_external_id: str | None
    code: str | None
    external_id: str
    store_id: str | None
    last_change: str
    state: int

    def render(self, language: str) -> dict[str, Any]:
        """The group as the upstream sends it, named in ``language``."""
        return {
            "product_group_id": self.product_group_id,
            "name": self.names[language],
            "parent_product_group_id": self.parent_product_group_id,
            "parent_external_id": self.parent_external_id,
            "code": self.code,
            "external_id": self.external_id,
            "store_id": self.store_id,
            "last_change": self.last_change,
            "state": self.state,
        }


@dataclass
class _Node:
    stem: tuple[str, str]  # the name without the clearance suffix, (cs, en)
    suffix: tuple[str, str]
    parent: int | None
    depth: int

    @property
    def names(self) -> tuple[str, str]:
        return self.stem[0] + self.suffix[0], self.stem[1] + self.suffix[1]

    def child(self, stem: tuple[str, str], index: int) -> _Node:
        return _Node(stem, self.suffix, index, self.depth + 1)


def _tree(rng: random.Random) -> list[_Node]:
    """Names and parents: 40 roots, then up to three levels of children below them."""
    nodes = [_Node(root, variant, None, 0) for variant in _ROOT_VARIANTS for root in _ROOTS]
    for index in range(len(nodes)):
        cs, en = nodes[index].stem
        for qcs, qen in rng.sample(_QUALIFIERS, rng.randint(2, 4)):
            nodes.append(nodes[index].child((f"{qcs} {cs.lower()}", f"{qen} {en.lower()}"), index))
        if index % 7 == 0:
            nodes.append(_Node(_OTHER, ("", ""), index, 1))
    for index in range(len(nodes)):
        if nodes[index].depth != 1 or nodes[index].stem == _OTHER:
            continue
        cs, en = nodes[index].stem
        for brand in rng.sample(_BRANDS, rng.randint(1, 3)):
            nodes.append(nodes[index].child((f"{cs} {brand}", f"{en} {brand}"), index))
    for index in range(len(nodes)):
        if nodes[index].depth == 2 and rng.random() < 0.3:
            cs, en = nodes[index].stem
            for number in range(1, rng.randint(2, 3) + 1):
                stem = (f"{cs}, řada {number}", f"{en}, series {number}")
                nodes.append(nodes[index].child(stem, index))
    return nodes


def _timestamp(rng: random.Random) -> str:
    moment = datetime(2019, 1, 1) + timedelta(seconds=rng.randrange(6 * 365 * 24 * 3600))
    return moment.strftime(TIME_FORMAT)


@functools.cache
def demo_groups() -> tuple[Group, ...]:
    """The seeded demo data set, in generation order (not id order)."""
    rng = random.Random(SEED)
    nodes = _tree(rng)
    ids = [str(number) for number in rng.sample(range(1000, 1_000_000), len(nodes))]
    stores: list[str | None] = []
    groups: list[Group] = []
    for index, node in enumerate(nodes):
        inherited = stores[node.parent] if node.parent is not None else None
        store = inherited or (rng.choice(("1", "2", "3")) if rng.random() < 0.05 else None)
        stores.append(store)
        parent_id, parent_ext = _parent_refs(rng, ids, node.parent)
        groups.append(Group(
            product_group_id=ids[index],
            names=dict(zip(LANGUAGES, node.names, strict=True)),
            parent_product_group_id=parent_id,
            parent_external_id=parent_ext,
            code=None if rng.random() < 0.04 else f"PG-{index + 1:04d}",
            external_id=f"ext-{index + 1:04d}",
            store_id=store,
            last_change=_timestamp(rng),
            state=0 if rng.random() < 0.08 else 1,
        ))
    return tuple(groups)


def _parent_refs(
    rng: random.Random, ids: list[str], parent: int | None
) -> tuple[str | None, str | None]:
    """A child names its parent by both references, by id only, or by external id only."""
    if parent is None:
        return None, None
    by_id, by_ext = ids[parent], f"ext-{parent + 1:04d}"
    draw = rng.random()
    if draw < 0.5:
        return by_id, by_ext
    return (by_id, None) if draw < 0.75 else (None, by_ext)


_OPTIONAL_ID = text(nullable=True, max_length=MAX_ID)


class CareCloudData(EmulatorData):
    """The app's groups, changeable (:mod:`gateway.emulators.changes`).

    ``name`` sets the name in every language. A deletion is the upstream's: ``state`` 0 and a
    new ``last_change``, the group still listed (a group already deleted is left as it is).
    """

    kind = "carecloud"
    group_fields: ClassVar[Mapping[str, Check]] = {
        "name": text(),
        "parent_product_group_id": _OPTIONAL_ID,
        "parent_external_id": _OPTIONAL_ID,
        "code": _OPTIONAL_ID,
        "external_id": text(max_length=MAX_ID),
        "store_id": _OPTIONAL_ID,
        "state": choice(0, 1),
    }

    def __init__(self, *, now: Clock = utc_now) -> None:
        seed = demo_groups()
        self._groups = {group.product_group_id: group for group in seed}
        self.groups: tuple[Group, ...] = seed  # what readers see: replaced, never changed
        self._issued = set(self._groups)  # ids are never reused, not even after a reset
        self._serial = len(seed)  # numbers new external ids and codes after the seed's
        self._rng = random.Random(SEED + 1)
        latest = max(datetime.strptime(g.last_change, TIME_FORMAT) for g in seed)
        super().__init__(now=now, resolution=timedelta(seconds=1), latest_seeded=latest)

    def group_ids(self) -> list[str]:
        return [group.product_group_id for group in self.groups if group.state == 1]

    def _size(self) -> int:
        return len(self._groups)

    def _restore_seed(self) -> None:
        self._groups = {group.product_group_id: group for group in demo_groups()}
        self._publish()

    def _publish(self) -> None:
        self.groups = tuple(self._groups.values())

    def _last_change(self) -> str:
        return self._stamp().astimezone(UTC).strftime(TIME_FORMAT)

    def _add_group(self, values: dict[str, Any]) -> str:
        group_id = self._new_id()
        self._serial += 1
        name = values.pop("name")
        self._groups[group_id] = Group(
            product_group_id=group_id,
            names=dict.fromkeys(LANGUAGES, name),
            parent_product_group_id=values.pop("parent_product_group_id", None),
            parent_external_id=values.pop("parent_external_id", None),
            code=values.pop("code", f"PG-{self._serial:04d}"),
            external_id=values.pop("external_id", f"ext-{self._serial:04d}"),
            store_id=values.pop("store_id", None),
            last_change=self._last_change(),
            state=values.pop("state", 1),
        )
        self._publish()
        return group_id

    def _new_id(self) -> str:
        while True:
            group_id = str(self._rng.randrange(1000, 1_000_000))
            if group_id not in self._issued:
                self._issued.add(group_id)
                return group_id

    def _change_group(self, group_id: str, values: dict[str, Any]) -> None:
        group = self._group(group_id)
        if "name" in values:
            values["names"] = dict.fromkeys(LANGUAGES, values.pop("name"))
        self._groups[group_id] = dataclasses.replace(group, **values,
                                                     last_change=self._last_change())
        self._publish()

    def _remove_group(self, group_id: str, purge: bool) -> None:
        group = self._group(group_id)
        if purge:
            del self._groups[group_id]
        elif group.state != 0:
            self._groups[group_id] = dataclasses.replace(group, state=0,
                                                         last_change=self._last_change())
        self._publish()

    def _group(self, group_id: str) -> Group:
        group = self._groups.get(group_id)
        if group is None:
            raise UnknownId(f"no carecloud group {group_id!r}")
        return group


def negotiate_language(header: str | None) -> str:
    """The supported language an ``Accept-Language`` header prefers most (``cs`` if none)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or DEFAULT_ACCEPT_LANGUAGE).split(",")):
        tag, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.split("-")[0].lower()
        if quality > 0 and primary in LANGUAGES:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else LANGUAGES[0]


class _BadParameter(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"Invalid value of parameter '{name}': {message}")


def _integer(params: dict[str, str], name: str, default: int, minimum: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not _INTEGER.fullmatch(value) or int(value) < minimum:
        raise _BadParameter(name, f"expected an integer >= {minimum}, got {value!r}.")
    return int(value)


def _sort_key(field: str, language: str) -> Callable[[Group], tuple[bool, Any]]:
    def key(group: Group) -> tuple[bool, Any]:
        value = group.render(language)[field]
        if value is None:
            return True, 0
        return False, int(value) if field in _NUMERIC_FIELDS else value

    return key


def _select(
    groups: tuple[Group, ...], params: dict[str, str], language: str
) -> tuple[list[Group], int, int]:
    """Filtered and sorted groups, and the validated offset and count."""
    count = _integer(params, "count", DEFAULT_COUNT, 1)
    offset = _integer(params, "offset", 0, 0)
    field = params.get("sort_field", "product_group_id")
    if field not in SORT_FIELDS:
        raise _BadParameter("sort_field", f"unknown field {field!r}.")
    direction = params.get("sort_direction", "asc")
    if direction not in ("asc", "desc"):
        raise _BadParameter("sort_direction", f"expected 'asc' or 'desc', got {direction!r}.")
    chosen = [group for group in groups if _matches(group, params, language)]
    chosen.sort(key=_sort_key("product_group_id", language))
    chosen.sort(key=_sort_key(field, language), reverse=direction == "desc")
    return chosen, offset, count


def _matches(group: Group, params: dict[str, str], language: str) -> bool:
    name = params.get("name")
    if name is not None and name.casefold() not in group.names[language].casefold():
        return False
    exact = (("store_id", group.store_id), ("code", group.code), ("external_id", group.external_id))
    return all(params.get(key) in (None, value) for key, value in exact)


def _endpoint(token: str, data: CareCloudData) -> Callable[[Request], Awaitable[Response]]:
    async def product_groups(request: Request) -> Response:
        if bearer_token(request) != token:
            return json_error(401, {"error": {"code": 401, "message": "Invalid or missing token."}},
                              {"WWW-Authenticate": "Bearer"})
        language = negotiate_language(request.headers.get("accept-language"))
        params = {key: value for key, value in request.query_params.items() if value != ""}
        try:
            groups, offset, count = _select(data.groups, params, language)
        except _BadParameter as exc:
            return json_error(400, {"error": {"code": 400, "message": str(exc)}})
        page = [group.render(language) for group in groups[offset:offset + count]]
        body = {"data": {"product_groups": page, "total_items": len(groups)}}
        return JSONResponse(body, headers={"Content-Language": language,
                                           "Vary": "Accept-Language"})

    return product_groups


def create_app(*, token: str = DEMO_TOKEN, now: Clock = utc_now) -> Starlette:
    """A CareCloud emulator accepting ``token``, serving its own copy of the seeded demo data
    (``app.state.data``, a :class:`CareCloudData`; ``now`` stamps its changes)."""
    data = CareCloudData(now=now)
    return emulator_app("carecloud",
                        [Route("/product-groups", _endpoint(token, data), methods=["GET"])],
                        token=token, data=data)
