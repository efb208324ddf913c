"""Emulator of the Comestri products API: ``GET /products`` (seed doc 004).

Bearer authentication. A missing or wrong token answers 401 with
``WWW-Authenticate: Bearer realm="comestri"``; the token :data:`FORBIDDEN_TOKEN` is known but has
no permission and answers 403 (both documented). Invalid parameters answer 422
``{"errors": [{"param": ..., "message": ...}, ...]}``, one item per bad parameter.

Choices where the document is silent (also in ``docs/emulators/comestri.md``):

* ``per_page`` must be an integer 1..250 (default 50), ``page`` an integer >= 1 (default 1);
* time windows are ISO 8601 with ``Z``, an offset, or neither (then UTC); both bounds inclusive;
* ``id`` and ``code`` match exactly, ``name`` is a case-insensitive substring, ``status`` is
  ``active`` or ``inactive``; filters apply after ``root_products_only`` (default true);
* entries always carry ``id``, ``code``, ``created_at`` and ``updated_at``; the other product fields
  are those named by ``response_product_fields`` or, without it, the doc example's; associated
  fields likewise (absent: ``product_class`` and ``attribute_values``; present but empty: none);
* ``dimension`` and ``packed_dimension`` are always null, ``catalogs``, ``shipping_zones``,
  ``price_items``, ``inventories``, ``media_items`` and ``entity_identifiers`` always empty lists;
* entries are ordered by id; ``total_pages`` is 0 when nothing matches; a page past the end is
  empty.

The demo data (about 520 root products and 150 child SKUs) is generated once from
``random.Random(SEED)``, never from the clock. Each app changes its own copy at run time
(:class:`ComestriData`, ``app.state.data``): what it creates or changes is stamped by its clock.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.emulators.changes import (
    MAX_ID,
    Check,
    Clock,
    EmulatorData,
    UnknownId,
    boolean,
    choice,
    text,
    utc_now,
)
from gateway.emulators.common import bearer_token, emulator_app, json_error, parse_list

__all__ = [
    "ASSOCIATED_FIELDS",
    "DEMO_TOKEN",
    "FORBIDDEN_TOKEN",
    "MAX_PER_PAGE",
    "PRODUCT_FIELDS",
    "SEED",
    "ComestriData",
    "create_app",
    "products",
]

DEMO_TOKEN = "demo-comestri-token"
FORBIDDEN_TOKEN = "demo-comestri-forbidden"
MAX_PER_PAGE = 250
SEED = 20160530
PRODUCT_FIELDS = ("name", "status", "class_type")
ASSOCIATED_FIELDS = (
    "product_class", "brand", "attribute_values", "dimension", "packed_dimension",
    "product_categories", "catalogs", "shipping_zones", "price_items", "inventories",
    "media_items", "entity_identifiers",
)
DEFAULT_PRODUCT_FIELDS = ("product_type", "status", "product_attributes", "name", "class_type",
                          "discontinued")
DEFAULT_ASSOCIATED_FIELDS = ("product_class", "attribute_values")
_NULL_FIELDS = ("dimension", "packed_dimension")
_INT_RE = re.compile(r"[0-9]+")
_START = datetime(2023, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 3 * 365 * 86_400  # 2023-01-01 .. 2025-12-31
_TIME_PARAMS = ("created_time_from", "created_time_to", "updated_time_from", "updated_time_to")

_CLASSES = (
    (17, "Style"), (3, "Accessory"), (5, "Footwear"), (8, "Outerwear"), (11, "Knitwear"),
    (12, "Denim"), (19, "Swimwear"), (23, "Homewares"), (24, "Beauty"), (29, "Fragrance"),
    (31, "Jewellery"), (34, "Bags"), (36, "Sleepwear"),
)
_NOUNS: dict[str, tuple[str, ...]] = {
    "Style": ("Shirt", "Dress", "Blouse", "Skirt", "Polo"),
    "Accessory": ("Scarf", "Belt", "Cap", "Gloves"),
    "Footwear": ("Sneaker", "Boot", "Loafer", "Sandal"),
    "Outerwear": ("Parka", "Trench Coat", "Puffer Jacket"),
    "Knitwear": ("Cardigan", "Jumper", "Vest"),
    "Denim": ("Slim Jean", "Denim Jacket", "Denim Short"),
    "Swimwear": ("Swim Short", "One Piece", "Bikini Top"),
    "Homewares": ("Throw", "Cushion", "Candle", "Vase"),
    "Beauty": ("Serum", "Lip Tint", "Cleanser"),
    "Fragrance": ("Eau de Parfum", "Body Mist"),
    "Jewellery": ("Ring", "Pendant", "Hoop Earring"),
    "Bags": ("Tote", "Backpack", "Crossbody Bag"),
    "Sleepwear": ("Pyjama Set", "Robe", "Sleep Shirt"),
}
# (id, code, values: None means free text made from the product name)
_ATTRIBUTES: tuple[tuple[int, str, tuple[str, ...] | None], ...] = (
    (1, "description", None),
    (2, "short_description", None),
    (7, "country_of_origin", ("Germany", "Italy", "Portugal", "China", "Vietnam", "Australia")),
    (14, "season", ("Spring", "Summer", "Autumn", "Winter")),
    (15, "material", ("Cotton", "Linen", "Wool", "Recycled Polyester", "Leather", "Silk")),
    (16, "colour", ("Black", "Ivory", "Navy", "Sage", "Rust", "Stone")),
    (18, "care_instructions", ("Machine wash cold", "Hand wash", "Dry clean only")),
    (21, "fit", ("Regular", "Relaxed", "Slim")),
)
_BRANDS = ((4, "Kestrel & Co"), (9, "Marlow"), (13, "Saltwater"), (22, "Northbound"),
           (27, "Atelier Vela"))
_CATEGORIES = ((101, "Women"), (102, "Men"), (103, "Kids"), (110, "New In"), (111, "Sale"),
               (120, "Gifts"), (130, "Sustainable"))
_SIZES = ("xs", "s", "m", "l", "xl")


@dataclass
class _Product:
    id: int
    code: str
    name: str
    status: str
    class_type: str
    created: datetime
    updated: datetime
    product_class: dict[str, Any]
    parent_id: int | None = None
    discontinued: bool = False
    brand: dict[str, Any] | None = None
    attribute_values: list[dict[str, Any]] = field(default_factory=list)
    product_categories: list[dict[str, Any]] = field(default_factory=list)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Factory:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_id = 1000
        self.serial = 0

    def new_id(self) -> int:
        self.next_id += self.rng.randint(1, 7)
        return self.next_id

    def moment(self, after: datetime | None = None) -> datetime:
        start = after or _START
        left = _SPAN_SECONDS - int((start - _START).total_seconds())
        return start + timedelta(seconds=self.rng.randrange(max(left, 1)))

    def root(self, index: int) -> _Product:
        rng = self.rng
        class_id, class_name = _CLASSES[index % len(_CLASSES)]
        noun = rng.choice(_NOUNS[class_name])
        letter = "ABCDEFGH"[rng.randrange(8)]
        self.serial += 1
        name = f"{noun} {letter}"
        created = self.moment()
        return _Product(
            id=self.new_id(),
            code=f"{_slug(name)}-{self.serial:04d}",
            name=name,
            status="inactive" if rng.random() < 0.1 else "active",
            class_type="sku",
            created=created,
            updated=self.moment(created),
            product_class={"id": class_id, "name": class_name},
            discontinued=rng.random() < 0.05,
            brand=None if rng.random() < 0.2 else dict(zip(("id", "name"), rng.choice(_BRANDS),
                                                           strict=True)),
            attribute_values=self.attributes(name),
            product_categories=[{"id": i, "name": n}
                                for i, n in rng.sample(_CATEGORIES, rng.randint(0, 3))],
        )

    def attributes(self, name: str) -> list[dict[str, Any]]:
        chosen = self.rng.sample(_ATTRIBUTES, self.rng.randint(2, 6))
        chosen.sort(key=lambda a: _ATTRIBUTES.index(a))
        values = []
        for attr_id, code, options in chosen:
            if options is None:
                data = f"{name}: {code.replace('_', ' ')} text"
            else:
                data = self.rng.choice(options)
            values.append({"attribute_definition_id": attr_id, "attribute_definition_code": code,
                           "data": data})
        return values

    def children(self, parent: _Product) -> list[_Product]:
        sizes = _SIZES[: self.rng.randint(2, 4)]
        kids = []
        for size in sizes:
            created = self.moment(parent.created)
            kids.append(_Product(
                id=self.new_id(),
                code=f"{parent.code}-{size}",
                name=f"{parent.name} - {size.upper()}",
                status=parent.status if self.rng.random() < 0.9 else "inactive",
                class_type="sku",
                created=created,
                updated=self.moment(created),
                product_class=dict(parent.product_class),
                parent_id=parent.id,
                brand=parent.brand,
                attribute_values=[*parent.attribute_values,
                                  {"attribute_definition_id": 22,
                                   "attribute_definition_code": "size", "data": size.upper()}],
                product_categories=list(parent.product_categories),
            ))
        return kids


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@cache
def products() -> tuple[_Product, ...]:
    """Every demo product (roots and child SKUs), ordered by id."""
    factory = _Factory(SEED)
    made: list[_Product] = []
    for index in range(530):
        root = factory.root(index)
        made.append(root)
        if root.product_class["name"] == "Style" or index % 29 == 4:
            root.class_type = "style"
            made.extend(factory.children(root))
    return tuple(made)


class ComestriData(EmulatorData):
    """The app's products, changeable (:mod:`gateway.emulators.changes`); Comestri has no groups.

    A new product is a root ``sku`` product with the next free id, ``created_at`` =
    ``updated_at`` = now (whole seconds), a product class and a ``description`` attribute; a change
    bumps ``updated_at``; a deleted product disappears, its child SKUs with it.
    """

    kind = "comestri"
    product_fields: ClassVar[Mapping[str, Check]] = {
        "name": text(), "code": text(max_length=MAX_ID), "status": choice("active", "inactive"),
        "class_type": choice("sku", "style"), "discontinued": boolean(),
    }

    def __init__(self, *, now: Clock = utc_now) -> None:
        seed = products()
        self._restore_seed()
        self._last_id = seed[-1].id  # new ids follow every id ever given, never reused
        self._serial = len(seed)  # numbers new codes after the seed's
        latest = max(product.updated for product in seed)
        super().__init__(now=now, resolution=timedelta(seconds=1), latest_seeded=latest)

    def product_ids(self) -> list[str]:
        """Ids of the root products (those listed by default)."""
        return [str(product.id) for product in self.products if product.parent_id is None]

    def _size(self) -> int:
        return len(self._products)

    def _restore_seed(self) -> None:
        self._products = {product.id: product for product in products()}
        self._publish()

    def _publish(self) -> None:
        self.products = tuple(sorted(self._products.values(), key=lambda p: p.id))

    def _add_product(self, values: dict[str, Any]) -> str:
        self._last_id += 1
        self._serial += 1
        moment = self._stamp()
        name = values.pop("name")
        class_id, class_name = _CLASSES[self._serial % len(_CLASSES)]
        self._products[self._last_id] = _Product(
            id=self._last_id,
            code=values.pop("code", f"{_slug(name)}-{self._serial:04d}"),
            name=name,
            status=values.pop("status", "active"),
            class_type=values.pop("class_type", "sku"),
            created=moment,
            updated=moment,
            product_class={"id": class_id, "name": class_name},
            discontinued=values.pop("discontinued", False),
            attribute_values=[{"attribute_definition_id": 1,
                               "attribute_definition_code": "description",
                               "data": f"{name}: description text"}],
        )
        self._publish()
        return str(self._last_id)

    def _change_product(self, product_id: str, values: dict[str, Any]) -> None:
        product = self._product(product_id)
        self._products[product.id] = dataclasses.replace(product, **values,
                                                         updated=self._stamp())
        self._publish()

    def _remove_product(self, product_id: str) -> None:
        product = self._product(product_id)
        del self._products[product.id]
        for child in [p for p in self._products.values() if p.parent_id == product.id]:
            del self._products[child.id]
        self._publish()

    def _product(self, product_id: str) -> _Product:
        product = self._products.get(int(product_id)) if _INT_RE.fullmatch(product_id) else None
        if product is None:
            raise UnknownId(f"no comestri product {product_id!r}")
        return product


# -- request handling ------------------------------------------------------------------------


class _Errors:
    """Collects 422 items while the query is parsed."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, param: str, message: str) -> None:
        self.items.append({"param": param, "message": message})


@dataclass
class _Query:
    page: int = 1
    per_page: int = 50
    root_only: bool = True
    filters: list[Callable[[_Product], bool]] = field(default_factory=list)
    product_fields: tuple[str, ...] = DEFAULT_PRODUCT_FIELDS
    associated_fields: tuple[str, ...] = DEFAULT_ASSOCIATED_FIELDS


def _integer(raw: str | None, param: str, default: int, maximum: int | None,
             errors: _Errors) -> int:
    if raw is None:
        return default
    if not _INT_RE.fullmatch(raw.strip()):
        errors.add(param, "Must be a number.")
        return default
    value = int(raw)
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"between 1 and {maximum}" if maximum is not None else "at least 1"
        errors.add(param, f"Must be a number {bound}.")
        return default
    return value


def _time(raw: str, param: str, errors: _Errors) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        errors.add(param, "Must be an ISO 8601 time, e.g. 2016-05-30T05:13:26Z.")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _time_filter(param: str, moment: datetime) -> Callable[[_Product], bool]:
    def attribute(p: _Product) -> datetime:
        return p.created if param.startswith("created") else p.updated

    if param.endswith("_from"):
        return lambda p: attribute(p) >= moment
    return lambda p: attribute(p) <= moment


def _fields(raw: str | None, param: str, allowed: tuple[str, ...], default: tuple[str, ...],
            errors: _Errors) -> tuple[str, ...]:
    if raw is None:
        return default
    names = parse_list(raw)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        errors.add(param, f"Unknown field(s) {', '.join(unknown)}; must be among: "
                          f"{', '.join(allowed)}.")
    return tuple(name for name in allowed if name in names)


def _filters(params: QueryParams, errors: _Errors) -> list[Callable[[_Product], bool]]:
    filters: list[Callable[[_Product], bool]] = []
    for param in _TIME_PARAMS:
        raw = params.get(param)
        moment = _time(raw, param, errors) if raw is not None else None
        if moment is not None:
            filters.append(_time_filter(param, moment))
    if (wanted_id := params.get("id")) is not None:
        filters.append(lambda p: str(p.id) == wanted_id.strip())
    if (code := params.get("code")) is not None:
        filters.append(lambda p: p.code == code)
    if (name := params.get("name")) is not None:
        filters.append(lambda p: name.strip().lower() in p.name.lower())
    if (status := params.get("status")) is not None:
        if status in ("active", "inactive"):
            filters.append(lambda p: p.status == status)
        else:
            errors.add("status", "Must be one of: active, inactive.")
    return filters


def _parse(request: Request) -> tuple[_Query, _Errors]:
    params, errors = request.query_params, _Errors()
    query = _Query(
        per_page=_integer(params.get("per_page"), "per_page", 50, MAX_PER_PAGE, errors),
        page=_integer(params.get("page"), "page", 1, None, errors),
        filters=_filters(params, errors),
        product_fields=_fields(params.get("response_product_fields"), "response_product_fields",
                               PRODUCT_FIELDS, DEFAULT_PRODUCT_FIELDS, errors),
        associated_fields=_fields(params.get("response_associated_fields"),
                                  "response_associated_fields", ASSOCIATED_FIELDS,
                                  DEFAULT_ASSOCIATED_FIELDS, errors),
    )
    root_only = params.get("root_products_only")
    if root_only is not None:
        if root_only in ("true", "false", "1", "0"):
            query.root_only = root_only in ("true", "1")
        else:
            errors.add("root_products_only", "Must be one of: true, false, 1, 0.")
    return query, errors


def _entry(product: _Product, query: _Query) -> dict[str, Any]:
    values: dict[str, Any] = {
        "product_type": None, "status": product.status, "product_attributes": None,
        "name": product.name, "class_type": product.class_type,
        "discontinued": product.discontinued,
    }
    entry: dict[str, Any] = {"id": product.id, "code": product.code}
    entry |= {name: values[name] for name in DEFAULT_PRODUCT_FIELDS if name in query.product_fields}
    entry |= {"created_at": _iso(product.created), "updated_at": _iso(product.updated)}
    for name in query.associated_fields:
        entry[name] = _associated(product, name)
    return entry


def _associated(product: _Product, name: str) -> Any:
    if name in _NULL_FIELDS:
        return None
    value = getattr(product, name, [])
    return value if value is None else _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    return [dict(item) for item in value]


def _products(data: ComestriData, request: Request) -> Response:
    query, errors = _parse(request)
    if errors.items:
        return json_error(422, {"errors": errors.items})
    matching = [p for p in data.products
                if not (query.root_only and p.parent_id is not None)
                and all(keep(p) for keep in query.filters)]
    start = (query.page - 1) * query.per_page
    chosen = matching[start: start + query.per_page]
    return JSONResponse({
        "page": query.page,
        "per_page": query.per_page,
        "total_pages": math.ceil(len(matching) / query.per_page),
        "total_entries": len(matching),
        "entries": [_entry(p, query) for p in chosen],
    })


def create_app(*, token: str = DEMO_TOKEN, now: Clock = utc_now) -> Starlette:
    """The Comestri emulator accepting ``Authorization: Bearer <token>``, serving its own copy
    of the seeded demo data (``app.state.data``, a :class:`ComestriData`; ``now`` stamps its
    changes)."""
    data = ComestriData(now=now)

    async def endpoint(request: Request) -> Response:
        given = bearer_token(request)
        if given == FORBIDDEN_TOKEN:
            return json_error(403, {"error": "forbidden",
                                    "message": "This token may not read products."})
        if given != token:
            return json_error(401, {"error": "unauthorized",
                                    "message": "Missing or invalid bearer token."},
                              {"WWW-Authenticate": 'Bearer realm="comestri"'})
        return _products(data, request)

    return emulator_app("comestri", [Route("/products", endpoint, methods=["GET"])], token=token,
                        data=data)
