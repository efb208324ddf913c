"""What an emulator's public endpoints show, read whole: for tests of its data changing.

:func:`everything` pages through a kind's own list endpoint; :func:`names` reduces that to
``{(entity, id): (name, detail)}`` (detail: CareCloud's ``state``, an Axim product's group), so
two reads can be compared and a change seen as a reader of the upstream would see it.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["Key", "everything", "names"]

Key = tuple[str, str]  # ("group" | "product", id)


def _get(client: httpx.Client, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def everything(kind: str, client: httpx.Client, *, children: bool = True
               ) -> list[dict[str, Any]]:
    """Every row the kind lists: groups (Axim: with all their products), or Comestri's products
    (child SKUs too, unless ``children`` is false)."""
    if kind == "carecloud":
        rows: list[dict[str, Any]] = _get(client, "/product-groups",
                                          count=100_000)["data"]["product_groups"]
        return rows
    if kind == "joptic":
        return _pages(client, "/product-groups", "data", limit=100, sortOrder="asc",
                      done=lambda body: not body["pagination"]["hasNext"])
    if kind == "axim":
        return _axim(client)
    return _pages(client, "/products", "entries", per_page=250,
                  root_products_only="false" if children else "true",
                  done=lambda body: body["page"] >= body["total_pages"])


def _pages(client: httpx.Client, path: str, field: str, *, done: Any,
           **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        body = _get(client, path, page=page, **params)
        rows += body[field]
        if done(body):
            return rows
        page += 1


def _axim(client: httpx.Client) -> list[dict[str, Any]]:
    """Groups 50 a page; each group's products gathered over product pages of 50."""
    groups: dict[str, dict[str, Any]] = {}
    product_page = 1
    while True:
        rows = _pages(client, "/productGroup/all", "data", limit=50, productLimit=50,
                      productPage=product_page,
                      done=lambda body: body["pagination"]["page"] * 50
                      >= body["pagination"]["total"])
        for row in rows:
            groups.setdefault(row["id"], {**row, "products": []})["products"] += row["products"]
        if all(r["productPagination"]["page"] * 50 >= r["productCount"] for r in rows):
            return list(groups.values())
        product_page += 1


def names(kind: str, client: httpx.Client) -> dict[Key, tuple[Any, Any]]:
    """``{(entity, id): (name, detail)}`` of everything the kind lists (Comestri: root products,
    those it lists by default)."""
    seen: dict[Key, tuple[Any, Any]] = {}
    for row in everything(kind, client, children=False):
        if kind == "carecloud":
            seen["group", row["product_group_id"]] = (row["name"], row["state"])
        elif kind == "joptic":
            seen["group", row["id"]] = (row["name"], None)
        elif kind == "axim":
            seen["group", row["id"]] = (row["name"], None)
            for product in row["products"]:
                seen["product", product["id"]] = (product["name"], row["id"])
        else:
            seen["product", str(row["id"])] = (row["name"], None)
    return seen
