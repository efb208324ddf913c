"""Emulator of the Axim Commerce open API: product groups with their products (seed docs 002, 003).

Two endpoints, each served both at the root and under ``/open-api/api`` (doc 002 shows the former,
doc 003 the latter; the gateway treats the prefix as part of its base URL)::

    GET /productGroup/all    page, limit, search, productPage, productLimit, productSearch
    GET /productGroup/{id}   page, limit, search

Authentication is the raw token in an ``accessToken`` header (no ``Bearer`` prefix); a missing or
wrong token answers 401 ``{"success": false, "message": ...}``.

Choices where the documents are silent (also in ``docs/emulators/axim.md``):

* ``limit`` / ``productLimit`` above 50 are clamped to 50, not rejected;
* a page size or page number that is not an integer >= 1 answers 400 (doc 003's "invalid input")
  naming the parameter, on both endpoints; so does a group id that is not 24 lowercase hex digits;
* searches are case-insensitive substrings: groups by name, products by name, SKU or variant SKU;
  with ``productSearch`` every group (matching ``search``) is still listed, maybe with no products;
* groups are ordered by ``createdAt`` then ``id``; products by creation order, identically in both
  endpoints, so page N of size L is the same slice of a group's products in both;
* inactive and access-restricted groups are listed like the others (their flags say what they are).

The demo data (115 groups, 0-60 products each, 1-4 variants per product) is generated once from
``random.Random(SEED)``, never from the clock. Each app changes its own copy at run time
(:class:`AximData`, ``app.state.data``): what it creates or changes is stamped by its clock.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.emulators.changes import (
    MAX_ID,
    BadChange,
    Check,
    Clock,
    EmulatorData,
    UnknownId,
    boolean,
    choice,
    number,
    text,
    utc_now,
)
from gateway.emulators.common import emulator_app, json_error

__all__ = ["DEMO_TOKEN", "MAX_LIMIT", "PREFIX", "SEED", "AximData", "create_app", "groups"]

DEMO_TOKEN = "demo-axim-token"
PREFIX = "/open-api/api"
MAX_LIMIT = 50
SEED = 20240830
AUTH_MESSAGE = "Access token is invalid or missing."
NOT_FOUND_MESSAGE = "Product group not found"
_ID_RE = re.compile(r"[0-9a-f]{24}")
_INT_RE = re.compile(r"[0-9]+")
_EPOCH = datetime(2023, 1, 2, tzinfo=UTC)
_LAST = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)

# category -> (SKU prefix, product nouns, option dimensions, price range)
_Option = tuple[str, tuple[str, ...]]
_CATALOGUE: dict[str, tuple[str, tuple[str, ...], tuple[_Option, ...], tuple[int, int]]] = {
    "Electronics": ("ELE", ("Wireless Earbuds", "Bluetooth Speaker", "Smartphone", "Tablet",
                            "Smartwatch", "USB-C Charger", "Mechanical Keyboard"),
                    (("Storage", ("64GB", "128GB", "256GB")),
                     ("Color", ("Black", "White", "Silver"))), (19, 1299)),
    "Clothing": ("CLO", ("Linen Shirt", "Denim Jacket", "Wool Sweater", "Chino Trousers",
                         "Cotton T-Shirt", "Rain Parka"),
                 (("Size", ("XS", "S", "M", "L", "XL")), ("Color", ("Navy", "Olive", "Sand"))),
                 (15, 249)),
    "Home & Kitchen": ("HOM", ("Chef Knife", "Cast Iron Skillet", "Coffee Grinder", "Linen Duvet",
                               "Ceramic Mug Set", "Stand Mixer"),
                       (("Finish", ("Matte", "Gloss", "Brushed")),), (12, 499)),
    "Garden": ("GAR", ("Pruning Shears", "Raised Bed Kit", "Hose Reel", "Solar Lantern",
                       "Compost Bin"), (("Size", ("Small", "Medium", "Large")),), (9, 299)),
    "Sports & Outdoors": ("SPO", ("Trail Running Shoe", "Yoga Mat", "Camping Tent",
                                  "Insulated Bottle", "Cycling Helmet"),
                          (("Size", ("S", "M", "L")), ("Color", ("Red", "Black", "Teal"))),
                          (14, 649)),
    "Toys": ("TOY", ("Building Blocks", "Wooden Train Set", "Plush Bear", "Puzzle 1000pc",
                     "Remote Control Car"), (("Age", ("3+", "6+", "12+")),), (8, 149)),
    "Beauty": ("BEA", ("Face Serum", "Hydrating Cream", "Lip Balm", "Shampoo Bar", "Eye Palette"),
               (("Volume", ("30ml", "50ml", "100ml")),), (6, 120)),
    "Books": ("BOO", ("Cookbook", "Travel Guide", "Novel", "Field Notebook", "Atlas"),
              (("Format", ("Paperback", "Hardcover", "Ebook")),), (9, 60)),
    "Office Supplies": ("OFF", ("Gel Pen Pack", "Desk Organiser", "Ergonomic Chair",
                                "Monitor Arm", "Label Printer"),
                        (("Color", ("Black", "Grey", "White")),), (4, 399)),
    "Automotive": ("AUT", ("Dash Cam", "Tyre Inflator", "Seat Cover", "Jump Starter"),
                   (("Fit", ("Universal", "Compact", "SUV")),), (19, 259)),
    "Pet Supplies": ("PET", ("Dog Harness", "Cat Tree", "Pet Bed", "Slow Feeder Bowl"),
                     (("Size", ("S", "M", "L", "XL")),), (9, 189)),
    "Footwear": ("FOO", ("Leather Boot", "Canvas Sneaker", "Sandal", "Running Shoe"),
                 (("Size", ("38", "39", "40", "41", "42", "43")), ("Color", ("Black", "Tan"))),
                 (29, 289)),
    "Jewellery": ("JEW", ("Silver Ring", "Gold Pendant", "Pearl Earrings", "Charm Bracelet"),
                  (("Metal", ("Silver", "Gold", "Rose Gold")),), (25, 899)),
    "Grocery": ("GRO", ("Olive Oil", "Espresso Beans", "Green Tea", "Dark Chocolate"),
                (("Pack", ("Single", "Twin", "Case")),), (3, 45)),
    "Health": ("HEA", ("Vitamin D3", "Protein Powder", "First Aid Kit", "Digital Thermometer"),
               (("Count", ("30", "60", "120")),), (5, 89)),
}
_QUALIFIERS = ("Summer Sale", "New Arrivals", "Clearance", "Premium", "Wholesale", "Staff Picks",
               "Back to School", "Holiday", "Essentials", "B2B", "Outlet")
_BRANDS = ("Nordvik", "Acme", "Kestrel", "Lumio", "Orbis", "Tandem", "Vela", "Brightline",
           "Halden", "Marlow")
_ADJECTIVES = ("durable", "lightweight", "best-selling", "sustainable", "compact", "classic")


class _Invalid(Exception):
    """A query parameter or path value the API rejects with 400."""


@dataclass(frozen=True)
class _Group:
    info: dict[str, Any]  # id, name, status, restrictAccess, createdAt, updatedAt
    products: tuple[dict[str, Any], ...]  # creation order


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Factory:
    """Generates the demo data set from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids: set[str] = set()
        self.skus = itertools.count(1)

    def object_id(self, moment: datetime) -> str:
        """A MongoDB-like id: 4 bytes of seconds, 8 random bytes (24 lowercase hex digits)."""
        while True:
            value = f"{int(moment.timestamp()):08x}{self.rng.getrandbits(64):016x}"
            if value not in self.ids:
                self.ids.add(value)
                return value

    def moment_after(self, start: datetime, max_days: float) -> datetime:
        delta = timedelta(milliseconds=self.rng.randrange(int(max_days * 86_400_000)))
        return min(start + delta, _LAST)

    def group_names(self) -> list[tuple[str, str]]:
        """(category, display name) pairs: every bare category and 100 qualified ones."""
        bare = [(category, category) for category in _CATALOGUE]
        combos = [(c, f"{q} {c}" if self.rng.random() < 0.5 else f"{c} - {q}")
                  for c in _CATALOGUE for q in _QUALIFIERS]
        return bare + self.rng.sample(combos, 100)

    def product_count(self, index: int) -> int:
        if index % 12 == 5:
            return 0
        if index % 9 == 2:
            return self.rng.randint(51, 60)
        return self.rng.randint(1, 40)

    def group(self, index: int, category: str, name: str) -> _Group:
        created = self.moment_after(_EPOCH, 900)
        info = {
            "id": self.object_id(created),
            "name": name,
            "status": index % 17 != 3,
            "restrictAccess": index % 13 == 7,
            "createdAt": _iso(created),
            "updatedAt": _iso(self.moment_after(created, 200)),
        }
        moments = sorted(self.moment_after(created, 300) for _ in range(self.product_count(index)))
        products = tuple(self.product(category, moment) for moment in moments)
        return _Group(info, products)

    def product(self, category: str, created: datetime) -> dict[str, Any]:
        prefix, nouns, options, (low, high) = _CATALOGUE[category]
        rng = self.rng
        brand, noun = rng.choice(_BRANDS), rng.choice(nouns)
        name = f"{brand} {noun} {rng.choice('ASXZ')}{rng.randint(1, 9)}"
        sku = f"{prefix}-{next(self.skus):05d}"
        price = float(rng.randint(low, high)) - (0.01 if rng.random() < 0.6 else 0.0)
        status = rng.choices(("active", "inactive", "draft"), weights=(8, 1, 1))[0]
        description = f"{name}: a {rng.choice(_ADJECTIVES)} {noun.lower()} by {brand}."
        product_id = self.object_id(created)
        return {
            "id": product_id,
            "name": name,
            "sku": sku,
            "price": round(price, 2),
            "status": status,
            "description": description,
            "variants": self.variants(name, sku, price, options, status == "active", created),
            "categories": [_slug(category), _slug(noun)],
            "mediaGallery": [
                {"url": f"https://cdn.axim.example/media/{product_id}/{n}.jpg",
                 "alt": f"{name} image {n}"}
                for n in range(1, rng.randint(1, 3) + 1)
            ],
            "seo": {"title": f"{name} | Axim Store", "description": description},
            "createdAt": _iso(created),
            "updatedAt": _iso(self.moment_after(created, 120)),
        }

    def variants(self, name: str, sku: str, price: float, options: Sequence[_Option],
                 active: bool, created: datetime) -> list[dict[str, Any]]:
        combos = list(itertools.product(*(values for _, values in options)))
        chosen = self.rng.sample(combos, min(len(combos), self.rng.randint(1, 4)))
        return [self.variant(name, sku, price, options, combo, active, created)
                for combo in chosen]

    def variant(self, name: str, sku: str, price: float, options: Sequence[_Option],
                combo: Sequence[str], active: bool, created: datetime) -> dict[str, Any]:
        rng = self.rng
        variant_price = round(price + rng.choice((0, 0, 10, 20)), 2)
        labels = " ".join(combo)
        body: dict[str, Any] = {
            "id": self.object_id(created),
            "sku": f"{sku}-" + "-".join(_slug(value).upper() for value in combo),
            "name": f"{name} {labels}",
            "price": variant_price,
            "cost": round(variant_price * 0.6, 2),
        }
        if rng.random() < 0.3:
            body["sale"] = round(variant_price * 0.85, 2)
        body["options"] = [
            {"optionName": option, "optionValueLabel": value, "optionValue": _slug(value)}
            for (option, _), value in zip(options, combo, strict=True)
        ]
        body["inventory"] = {"stock": rng.randint(0, 200), "minStock": rng.randint(5, 20)}
        body["isActive"] = active and rng.random() < 0.9
        return body


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@cache
def groups() -> tuple[_Group, ...]:
    """The demo product groups, ordered by createdAt then id (generated once, seeded)."""
    factory = _Factory(SEED)
    made = [factory.group(i, category, name)
            for i, (category, name) in enumerate(factory.group_names())]
    made.sort(key=lambda g: (g.info["createdAt"], g.info["id"]))
    return tuple(made)


def _products_of(made: Sequence[_Group]) -> Iterator[dict[str, Any]]:
    for group in made:
        yield from group.products


class AximData(EmulatorData):
    """The app's groups and their products, changeable (:mod:`gateway.emulators.changes`).

    A new group has no products; a new product (``group_id`` required) comes last in its group,
    with one variant, its SKU prefixed after the category the group's name mentions. A change
    bumps the changed object's ``updatedAt`` only (a product's change leaves its group's as it
    was). A deleted group disappears with its products; a deleted product disappears.
    """

    kind = "axim"
    group_fields: ClassVar[Mapping[str, Check]] = {
        "name": text(), "status": boolean(), "restrictAccess": boolean(),
    }
    product_fields: ClassVar[Mapping[str, Check]] = {
        "name": text(), "sku": text(max_length=MAX_ID), "price": number(0, 1_000_000),
        "status": choice("active", "inactive", "draft"), "description": text(),
    }
    product_create_fields: ClassVar[Mapping[str, Check]] = {"group_id": text(max_length=MAX_ID)}

    def __init__(self, *, now: Clock = utc_now) -> None:
        seed = groups()
        products = list(_products_of(seed))
        self._restore_seed()
        # New ids never repeat one of the seed's (nor each other); SKUs continue the seed's.
        self._factory = _Factory(SEED + 1)
        self._factory.ids.update(group.info["id"] for group in seed)
        self._factory.ids.update(product["id"] for product in products)
        self._factory.skus = itertools.count(len(products) + 1)
        latest = max(datetime.fromisoformat(item["updatedAt"])
                     for item in (*(g.info for g in seed), *products))
        super().__init__(now=now, resolution=timedelta(milliseconds=1), latest_seeded=latest)

    def group_ids(self) -> list[str]:
        return [group.info["id"] for group in self.groups]

    def product_ids(self) -> list[str]:
        return list(self._group_of)

    def _size(self) -> int:
        return len(self._groups) + len(self._group_of)

    def _restore_seed(self) -> None:
        self._groups = {group.info["id"]: group for group in groups()}
        self._group_of = {product["id"]: group_id for group_id, group in self._groups.items()
                          for product in group.products}
        self._publish()

    def _publish(self) -> None:
        """What readers see, replaced whole: the groups in order, and by id."""
        self.groups = tuple(sorted(self._groups.values(),
                                   key=lambda g: (g.info["createdAt"], g.info["id"])))
        self.by_id = dict(self._groups)

    def _add_group(self, values: dict[str, Any]) -> str:
        moment = self._stamp()
        group_id = self._factory.object_id(moment)
        info = {"id": group_id, "name": values["name"], "status": values.get("status", True),
                "restrictAccess": values.get("restrictAccess", False),
                "createdAt": _iso(moment), "updatedAt": _iso(moment)}
        self._groups[group_id] = _Group(info, ())
        self._publish()
        return group_id

    def _change_group(self, group_id: str, values: dict[str, Any]) -> None:
        group = self._group(group_id)
        info = {**group.info, **values, "updatedAt": _iso(self._stamp())}
        self._groups[group_id] = _Group(info, group.products)
        self._publish()

    def _remove_group(self, group_id: str, purge: bool) -> None:
        group = self._group(group_id)
        for product in group.products:
            del self._group_of[product["id"]]
        del self._groups[group_id]
        self._publish()

    def _add_product(self, values: dict[str, Any]) -> str:
        group_id = values.pop("group_id", None)
        if group_id is None:
            raise BadChange("group_id: required (the id of the group the product joins)")
        group = self._group(group_id)
        product = self._new_product(values, group.info["name"], self._stamp())
        self._groups[group_id] = _Group(group.info, (*group.products, product))
        self._group_of[product["id"]] = group_id
        self._publish()
        return str(product["id"])

    def _new_product(self, values: dict[str, Any], group_name: str,
                     moment: datetime) -> dict[str, Any]:
        category = next((c for c in _CATALOGUE if c.lower() in group_name.lower()), None)
        prefix = _CATALOGUE[category][0] if category else "GEN"
        name, price = values["name"], values.get("price", 10.0)
        sku = values.get("sku", f"{prefix}-{next(self._factory.skus):05d}")
        status = values.get("status", "active")
        description = values.get("description", f"{name}: new in the catalogue.")
        variant = {"id": self._factory.object_id(moment), "sku": f"{sku}-STD", "name": name,
                   "price": price, "cost": round(price * 0.6, 2), "options": [],
                   "inventory": {"stock": 0, "minStock": 5}, "isActive": status == "active"}
        return {
            "id": self._factory.object_id(moment), "name": name, "sku": sku, "price": price,
            "status": status, "description": description, "variants": [variant],
            "categories": [_slug(category)] if category else [], "mediaGallery": [],
            "seo": {"title": f"{name} | Axim Store", "description": description},
            "createdAt": _iso(moment), "updatedAt": _iso(moment),
        }

    def _change_product(self, product_id: str, values: dict[str, Any]) -> None:
        group, index = self._product(product_id)
        product = {**group.products[index], **values, "updatedAt": _iso(self._stamp())}
        product["seo"] = {"title": f"{product['name']} | Axim Store",
                          "description": product["description"]}
        products = (*group.products[:index], product, *group.products[index + 1:])
        self._groups[group.info["id"]] = _Group(group.info, products)
        self._publish()

    def _remove_product(self, product_id: str) -> None:
        group, index = self._product(product_id)
        products = (*group.products[:index], *group.products[index + 1:])
        self._groups[group.info["id"]] = _Group(group.info, products)
        del self._group_of[product_id]
        self._publish()

    def _group(self, group_id: str) -> _Group:
        group = self._groups.get(group_id)
        if group is None:
            raise UnknownId(f"no axim group {group_id!r}")
        return group

    def _product(self, product_id: str) -> tuple[_Group, int]:
        group_id = self._group_of.get(product_id)
        if group_id is None:
            raise UnknownId(f"no axim product {product_id!r}")
        group = self._groups[group_id]
        index = next(i for i, p in enumerate(group.products) if p["id"] == product_id)
        return group, index


# -- request handling ------------------------------------------------------------------------


def _number(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _INT_RE.fullmatch(raw.strip()) or int(raw) < 1:
        raise _Invalid(f"Invalid query parameter '{name}': must be an integer >= 1.")
    value = int(raw)
    return min(value, maximum) if maximum is not None else value


def _matches_product(product: dict[str, Any], needle: str) -> bool:
    if not needle:
        return True
    skus = [product["name"], product["sku"], *(v["sku"] for v in product["variants"])]
    return any(needle in text.lower() for text in skus)


def _page(items: Sequence[Any], page: int, limit: int) -> tuple[list[Any], dict[str, int]]:
    chosen = list(items[(page - 1) * limit: page * limit])
    return chosen, {"page": page, "total": len(items), "count": len(chosen), "limit": limit}


Handler = Callable[[Request], Awaitable[Response]]


def _endpoint(token: str, handler: Callable[[Request], Response]) -> Handler:
    """Wrap a handler with the accessToken check and the 400 answer to :class:`_Invalid`."""

    async def endpoint(request: Request) -> Response:
        if request.headers.get("accesstoken") != token:
            return json_error(401, {"success": False, "message": AUTH_MESSAGE})
        try:
            return handler(request)
        except _Invalid as exc:
            return json_error(400, {"success": False, "message": str(exc)})

    return endpoint


def _all_groups(store: AximData, request: Request) -> Response:
    page = _number(request, "page", 1)
    limit = _number(request, "limit", 10, MAX_LIMIT)
    product_page = _number(request, "productPage", 1)
    product_limit = _number(request, "productLimit", 5, MAX_LIMIT)
    search = request.query_params.get("search", "").strip().lower()
    product_search = request.query_params.get("productSearch", "").strip().lower()
    matching = [g for g in store.groups if search in g.info["name"].lower()]
    chosen, pagination = _page(matching, page, limit)
    data = []
    for group in chosen:
        found = [p for p in group.products if _matches_product(p, product_search)]
        products, product_pagination = _page(found, product_page, product_limit)
        data.append({**group.info, "productCount": len(group.products), "products": products,
                     "productPagination": product_pagination})
    return JSONResponse({"success": True, "data": data, "pagination": pagination})


def _one_group(store: AximData, request: Request) -> Response:
    group_id = request.path_params["group_id"]
    if not _ID_RE.fullmatch(group_id):
        raise _Invalid(f"Invalid product group id '{group_id}': must be 24 lowercase hex digits.")
    page = _number(request, "page", 1)
    limit = _number(request, "limit", 10, MAX_LIMIT)
    search = request.query_params.get("search", "").strip().lower()
    group = store.by_id.get(group_id)
    if group is None:
        return json_error(404, {"success": False, "message": NOT_FOUND_MESSAGE})
    found = [p for p in group.products if _matches_product(p, search)]
    products, pagination = _page(found, page, limit)
    data = {"productGroup": dict(group.info), "products": products, "pagination": pagination}
    return JSONResponse({"success": True, "data": data})


def create_app(*, token: str = DEMO_TOKEN, now: Clock = utc_now) -> Starlette:
    """The Axim emulator accepting ``accessToken: <token>``, serving its own copy of the seeded
    demo data (``app.state.data``, an :class:`AximData`; ``now`` stamps its changes)."""
    data = AximData(now=now)
    routes: list[BaseRoute] = []
    for prefix in ("", PREFIX):
        routes += [
            Route(f"{prefix}/productGroup/all", _endpoint(token, partial(_all_groups, data)),
                  methods=["GET"]),
            Route(f"{prefix}/productGroup/{{group_id}}",
                  _endpoint(token, partial(_one_group, data)), methods=["GET"]),
        ]
    return emulator_app("axim", routes, token=token, data=data)
