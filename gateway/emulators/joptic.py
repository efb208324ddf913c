"""Emulator of Joptic's ``GET /product-groups`` (seed doc 001).

The upstream pages with ``page`` (default 1, clamped to >= 1) and ``limit`` (default 10, clamped
to 1..100), filters by ``search`` (case-insensitive part of the name) and ``isActive``, sorts by
``sortBy`` / ``sortOrder`` (default ``createdAt`` ``desc``) and answers
``{"data": [...], "pagination": {"page", "limit", "total", "totalPages", "hasNext", "hasPrev"}}``.

Choices where the document is silent (see ``docs/emulators/joptic.md``):

* a missing or wrong bearer token is a 401 ``{"statusCode": 401, "message": "Unauthorized"}``
  (the NestJS shape the upstream's fields suggest);
* ``page``/``limit`` that are not integers fall back to the default, then the clamp applies;
  the pagination block echoes the clamped values; a page past the end has empty ``data``;
* ``sortBy`` maps ``createdAt``, ``updatedAt`` and ``name``; anything else (``title`` and
  ``ref`` included) sorts by ``createdAt``; ``sortOrder`` other than asc/desc is ``desc``;
  ties are broken by ``id`` ascending, nulls sort last in both directions, strings compare by
  code point;
* ``isActive`` accepts ``true``/``1`` and ``false``/``0`` (any case), anything else is ignored;
  an empty ``search`` is ignored, otherwise groups without a name never match.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import re
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
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

__all__ = ["DEMO_TOKEN", "SORT_FIELDS", "Group", "JopticData", "create_app", "demo_groups"]

DEMO_TOKEN = "demo-joptic-token"
SORT_FIELDS: tuple[str, ...] = ("createdAt", "updatedAt", "name")
DEFAULT_SORT = "createdAt"
DEFAULT_PAGE, DEFAULT_LIMIT, MAX_LIMIT = 1, 10, 100
SEED = 20240612
GROUP_COUNT = 270
_INTEGER = re.compile(r"[+-]?[0-9]+")
_ID_ALPHABET = string.ascii_lowercase + string.digits
_ACTIVE = {"true": 1, "1": 1, "false": 0, "0": 0}

_CATEGORIES: tuple[str, ...] = (
    "Single vision lenses", "Progressive", "Bifocal lenses", "Office lenses", "Frames - Acetate",
    "Frames - Metal", "Frames - Titanium", "Frames - Rimless", "Frames - Kids", "Sunglasses",
    "Contact lenses", "Daily contact lenses", "Monthly contact lenses", "Toric contact lenses",
    "Solutions", "Cases", "Cleaning cloths", "Services", "Repairs", "Accessories",
    "Coatings", "Tints", "Sports eyewear", "Safety eyewear", "Reading glasses",
)
_INDICES: tuple[str, ...] = ("1.50", "1.53", "1.56", "1.60", "1.67", "1.74")
_FEATURES: tuple[str, ...] = (
    "Anti-reflective", "Blue light filter", "Photochromic", "Hard coat", "Polarised", "UV400",
    "Mirror", "Gradient", "Clear", "Hydrophobic",
)
_BRANDS: tuple[str, ...] = (
    "Essilor", "Zeiss", "Hoya", "Rodenstock", "Ray-Ban", "Oakley", "Acuvue", "Biofinity",
    "Silhouette", "Lindberg",
)


@dataclass(frozen=True, kw_only=True)
class Group:
    """One demo product group, exactly as the upstream sends it."""

    id: str
    store: str | None
    name: str | None
    status: int
    parent: str | None
    createdAt: str | None  # the upstream's field name
    updatedAt: str | None  # the upstream's field name

    def render(self) -> dict[str, Any]:
        return asdict(self)


def _cuid(rng: random.Random) -> str:
    return "clx" + "".join(rng.choices(_ID_ALPHABET, k=22))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _name(rng: random.Random, parent_name: str | None) -> str | None:
    """An optics-flavoured name, sometimes a lens index alone; a few groups have none."""
    draw = rng.random()
    if draw < 0.02:
        return None
    if draw < 0.12:
        return rng.choice(_INDICES)
    base = parent_name or rng.choice(_CATEGORIES)
    if draw < 0.45:
        return f"{base} {rng.choice(_INDICES)} {rng.choice(_FEATURES)}"
    if draw < 0.75:
        return f"{base} - {rng.choice(_BRANDS)}"
    return f"{rng.choice(_FEATURES)} {base.lower()}"


def _created(rng: random.Random, earlier: list[datetime]) -> datetime:
    """A creation time in 2022-2025; about one in ten repeats an earlier one (batch imports)."""
    if earlier and rng.random() < 0.1:
        return rng.choice(earlier)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    return start + timedelta(milliseconds=rng.randrange(4 * 365 * 24 * 3600 * 1000))


def _updated(rng: random.Random, created: datetime) -> str | None:
    draw = rng.random()
    if draw < 0.05:
        return None
    if draw < 0.35:
        return _iso(created)
    end = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    span = int((end - created).total_seconds() * 1000)
    return _iso(created + timedelta(milliseconds=rng.randrange(max(span, 1))))


@functools.cache
def demo_groups() -> tuple[Group, ...]:
    """The seeded demo data set: categories first, then groups below some of them."""
    rng = random.Random(SEED)
    groups: list[Group] = []
    created: list[datetime] = []
    for index in range(GROUP_COUNT):
        parent = rng.choice(groups[:60]) if index >= len(_CATEGORIES) and rng.random() < 0.55 \
            else None
        if index < len(_CATEGORIES):
            name: str | None = _CATEGORIES[index]
        else:
            name = _name(rng, parent.name if parent else None)
        moment = _created(rng, created)
        created.append(moment)
        groups.append(Group(
            id=_cuid(rng),
            store=rng.choice(("store-1", "store-2", "store-3")) if rng.random() < 0.1 else None,
            name=name,
            status=0 if rng.random() < 0.15 else 1,
            parent=parent.id if parent else None,
            createdAt=_iso(moment),
            updatedAt=_updated(rng, moment),
        ))
    return tuple(groups)


class JopticData(EmulatorData):
    """The app's groups, changeable (:mod:`gateway.emulators.changes`).

    A new group has ``createdAt`` = ``updatedAt`` = now, ``status`` 1; a change bumps
    ``updatedAt``; a deletion removes the group (the API has no deleted state: ``status`` 0 is
    inactive, which a PATCH can set).
    """

    kind = "joptic"
    group_fields: ClassVar[Mapping[str, Check]] = {
        "name": text(),
        "store": text(nullable=True, max_length=MAX_ID),
        "status": choice(0, 1),
        "parent": text(nullable=True, max_length=MAX_ID),
    }

    def __init__(self, *, now: Clock = utc_now) -> None:
        seed = demo_groups()
        self._groups = {group.id: group for group in seed}
        self.groups: tuple[Group, ...] = seed  # what readers see: replaced, never changed
        self._issued = set(self._groups)  # ids are never reused, not even after a reset
        self._rng = random.Random(SEED + 1)
        latest = max(datetime.fromisoformat(moment) for g in seed
                     for moment in (g.createdAt, g.updatedAt) if moment is not None)
        super().__init__(now=now, resolution=timedelta(milliseconds=1), latest_seeded=latest)

    def group_ids(self) -> list[str]:
        return [group.id for group in self.groups]

    def _size(self) -> int:
        return len(self._groups)

    def _restore_seed(self) -> None:
        self._groups = {group.id: group for group in demo_groups()}
        self._publish()

    def _publish(self) -> None:
        self.groups = tuple(self._groups.values())

    def _add_group(self, values: dict[str, Any]) -> str:
        group_id = _cuid(self._rng)
        while group_id in self._issued:
            group_id = _cuid(self._rng)
        self._issued.add(group_id)
        moment = _iso(self._stamp())
        self._groups[group_id] = Group(
            id=group_id, store=values.get("store"), name=values["name"],
            status=values.get("status", 1), parent=values.get("parent"),
            createdAt=moment, updatedAt=moment,
        )
        self._publish()
        return group_id

    def _change_group(self, group_id: str, values: dict[str, Any]) -> None:
        group = self._group(group_id)
        self._groups[group_id] = dataclasses.replace(group, **values,
                                                     updatedAt=_iso(self._stamp()))
        self._publish()

    def _remove_group(self, group_id: str, purge: bool) -> None:
        self._group(group_id)
        del self._groups[group_id]
        self._publish()

    def _group(self, group_id: str) -> Group:
        group = self._groups.get(group_id)
        if group is None:
            raise UnknownId(f"no joptic group {group_id!r}")
        return group


def _integer(value: str | None, default: int, low: int, high: int | None = None) -> int:
    number = int(value) if value is not None and _INTEGER.fullmatch(value.strip()) else default
    number = max(low, number)
    return number if high is None else min(high, number)


def _sorted(groups: list[Group], sort_by: str, descending: bool) -> list[Group]:
    """Sorted by ``sort_by``, ties by id ascending, nulls last whichever the direction."""
    present = sorted((g for g in groups if getattr(g, sort_by) is not None), key=lambda g: g.id)
    absent = sorted((g for g in groups if getattr(g, sort_by) is None), key=lambda g: g.id)
    present.sort(key=lambda g: str(getattr(g, sort_by)), reverse=descending)
    return present + absent


def _filtered(groups: tuple[Group, ...], params: dict[str, str]) -> list[Group]:
    search = params.get("search", "").casefold()
    active = _ACTIVE.get(params.get("isActive", "").strip().lower())
    return [
        group for group in groups
        if (not search or (group.name is not None and search in group.name.casefold()))
        and (active is None or group.status == active)
    ]


def _page(groups: tuple[Group, ...], params: dict[str, str]) -> dict[str, Any]:
    page = _integer(params.get("page"), DEFAULT_PAGE, 1)
    limit = _integer(params.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
    sort_by = params.get("sortBy", DEFAULT_SORT)
    sort_by = sort_by if sort_by in SORT_FIELDS else DEFAULT_SORT
    descending = params.get("sortOrder", "desc").strip().lower() != "asc"
    chosen = _sorted(_filtered(groups, params), sort_by, descending)
    total = len(chosen)
    total_pages = math.ceil(total / limit)
    start = (page - 1) * limit
    return {
        "data": [group.render() for group in chosen[start:start + limit]],
        "pagination": {
            "page": page, "limit": limit, "total": total, "totalPages": total_pages,
            "hasNext": page < total_pages, "hasPrev": page > 1,
        },
    }


def _endpoint(token: str, data: JopticData) -> Callable[[Request], Awaitable[Response]]:
    async def product_groups(request: Request) -> Response:
        if bearer_token(request) != token:
            return json_error(401, {"statusCode": 401, "message": "Unauthorized"})
        return JSONResponse(_page(data.groups, dict(request.query_params.items())))

    return product_groups


def create_app(*, token: str = DEMO_TOKEN, now: Clock = utc_now) -> Starlette:
    """A Joptic emulator accepting ``token``, serving its own copy of the seeded demo data
    (``app.state.data``, a :class:`JopticData`; ``now`` stamps its changes)."""
    data = JopticData(now=now)
    return emulator_app("joptic",
                        [Route("/product-groups", _endpoint(token, data), methods=["GET"])],
                        token=token, data=data)
