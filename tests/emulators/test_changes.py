"""The emulators' data changing at run time, seen through each upstream's own endpoints.

The apps here are this module's own (the session's shared emulators must stay as seeded), with a
clock the tests pin: every change time is known in advance.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import gateway.emulators.changes as changes
from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS, KINDS, create_emulator, emulator_data
from gateway.emulators.changes import BadChange, UnknownId
from tests.conftest import RunningEmulator
from tests.emulators.views import everything, names

T0 = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
SECOND_APP = "joptic-2"  # a second Joptic app: changes to one must not show in the other


class PinnedClock:
    """The apps' ``now``: stands still until a test moves it."""

    def __init__(self) -> None:
        self.moment = T0

    def __call__(self) -> datetime:
        return self.moment


@dataclass(frozen=True)
class Now:
    """The time a test's first change is stamped, in each upstream's format."""

    at: datetime

    def carecloud(self, seconds: int = 0) -> str:
        return (self.at + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")

    def ms(self, milliseconds: int = 0) -> str:
        """Joptic's and Axim's format."""
        moment = self.at + timedelta(milliseconds=milliseconds)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def seconds(self, seconds: int = 0) -> str:
        """Comestri's format."""
        return (self.at + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def clock() -> PinnedClock:
    return PinnedClock()


@pytest.fixture(scope="module")
def served(clock: PinnedClock) -> Iterator[dict[str, RunningEmulator]]:
    apps = {kind: create_emulator(kind, now=clock) for kind in KINDS}
    apps[SECOND_APP] = create_emulator("joptic", now=clock)
    with ServerThread(apps) as servers:
        yield {name: RunningEmulator(name.split("-")[0], app, servers.urls[name],
                                     DEMO_TOKENS[name.split("-")[0]])
               for name, app in apps.items()}


@pytest.fixture(scope="module")
def clients(served: dict[str, RunningEmulator]) -> Iterator[dict[str, httpx.Client]]:
    opened = {name: running.client() for name, running in served.items()}
    yield opened
    for client in opened.values():
        client.close()


_TESTS = itertools.count()


@pytest.fixture(autouse=True)
def t0(clients: dict[str, httpx.Client], clock: PinnedClock) -> Now:
    """Every test starts from the seed, the clock a day after the previous test's (change times
    only go forward, a reset included)."""
    clock.moment = T0 + timedelta(days=next(_TESTS))
    for client in clients.values():
        assert client.delete("/_emulator/data").json() == {"reset": True}
    return Now(clock.moment)


@pytest.fixture
def cc(clients: dict[str, httpx.Client]) -> httpx.Client:
    return clients["carecloud"]


@pytest.fixture
def jo(clients: dict[str, httpx.Client]) -> httpx.Client:
    return clients["joptic"]


@pytest.fixture
def ax(clients: dict[str, httpx.Client]) -> httpx.Client:
    return clients["axim"]


@pytest.fixture
def co(clients: dict[str, httpx.Client]) -> httpx.Client:
    return clients["comestri"]


def created(client: httpx.Client, entity: str, **body: Any) -> str:
    response = client.post(f"/_emulator/{entity}s", json=body)
    assert response.status_code == 201, response.text
    new_id: str = response.json()["id"]
    return new_id


def changed(client: httpx.Client, entity: str, item_id: str, **body: Any) -> None:
    response = client.patch(f"/_emulator/{entity}s/{item_id}", json=body)
    assert (response.status_code, response.json()) == (200, {"id": item_id}), response.text


def deleted(client: httpx.Client, entity: str, item_id: str, **params: Any) -> None:
    response = client.delete(f"/_emulator/{entity}s/{item_id}", params=params)
    assert (response.status_code, response.json()) == (200, {"id": item_id}), response.text


def get(client: httpx.Client, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# --- CareCloud ----------------------------------------------------------------------------------


def test_carecloud_created_group_is_listed_with_fresh_fields(cc: httpx.Client, t0: Now) -> None:
    group_id = created(cc, "group", name="Clip-on sunglasses", store_id="2")
    assert group_id.isdigit() and 1000 <= int(group_id) < 1_000_000
    for language in ("cs", "en"):
        found = cc.get("/product-groups", params={"name": "clip-on"},
                       headers={"Accept-Language": language}).json()["data"]
        assert found["total_items"] == 1
        row = found["product_groups"][0]
        assert row["product_group_id"] == group_id and row["name"] == "Clip-on sunglasses"
        assert (row["last_change"], row["state"], row["store_id"]) == (t0.carecloud(), 1, "2")
        assert row["parent_product_group_id"] is None and row["external_id"].startswith("ext-")
    newest = get(cc, "/product-groups", sort_field="last_change", sort_direction="desc",
                 count=1)["data"]["product_groups"]
    assert newest[0]["product_group_id"] == group_id


def test_carecloud_rename_shows_bumps_last_change_and_sorts_first(
        cc: httpx.Client, t0: Now) -> None:
    oldest = get(cc, "/product-groups", sort_field="last_change", count=1)["data"]
    group_id = oldest["product_groups"][0]["product_group_id"]
    changed(cc, "group", group_id, name="Renamed once")
    changed(cc, "group", group_id, name="Renamed twice")  # same pinned clock: one second later
    newest = get(cc, "/product-groups", sort_field="last_change", sort_direction="desc",
                 count=2)["data"]
    row = newest["product_groups"][0]
    assert (row["product_group_id"], row["name"]) == (group_id, "Renamed twice")
    assert row["last_change"] == t0.carecloud(1)
    assert newest["product_groups"][1]["last_change"] < t0.carecloud()  # a seeded one
    assert newest["total_items"] == oldest["total_items"]


def test_carecloud_delete_is_state_0_still_listed_and_purge_removes(
        cc: httpx.Client, t0: Now) -> None:
    before = get(cc, "/product-groups", count=1)["data"]
    row = before["product_groups"][0]
    assert row["state"] == 1
    deleted(cc, "group", row["product_group_id"])
    after = get(cc, "/product-groups", external_id=row["external_id"])["data"]["product_groups"]
    assert after == [{**row, "state": 0, "last_change": t0.carecloud()}]
    deleted(cc, "group", row["product_group_id"], purge="true")
    gone = get(cc, "/product-groups", count=1)["data"]
    assert gone["total_items"] == before["total_items"] - 1
    assert gone["product_groups"][0]["product_group_id"] != row["product_group_id"]


# --- Joptic -------------------------------------------------------------------------------------


def test_joptic_created_group_is_newest_with_fresh_timestamps(jo: httpx.Client, t0: Now) -> None:
    group_id = created(jo, "group", name="Myopia control", parent=None)
    assert group_id.startswith("clx") and len(group_id) == 25
    first = get(jo, "/product-groups", limit=1)  # createdAt desc by default
    assert first["data"] == [{"id": group_id, "store": None, "name": "Myopia control",
                              "status": 1, "parent": None, "createdAt": t0.ms(),
                              "updatedAt": t0.ms()}]
    assert get(jo, "/product-groups", search="myopia")["data"][0]["id"] == group_id


def test_joptic_update_bumps_updated_at_and_sorts_first(jo: httpx.Client, t0: Now) -> None:
    seeded_row = get(jo, "/product-groups", sortBy="updatedAt", sortOrder="asc", limit=1)["data"][0]
    changed(jo, "group", seeded_row["id"], name="Blue light 2031", status=0)
    newest = get(jo, "/product-groups", sortBy="updatedAt", sortOrder="desc", limit=1)["data"]
    assert newest == [{**seeded_row, "name": "Blue light 2031", "status": 0, "updatedAt": t0.ms()}]


def test_joptic_deleted_group_disappears(jo: httpx.Client) -> None:
    before = get(jo, "/product-groups", limit=1)
    group_id = before["data"][0]["id"]
    deleted(jo, "group", group_id)
    after = get(jo, "/product-groups", limit=100)
    assert after["pagination"]["total"] == before["pagination"]["total"] - 1
    assert group_id not in {row["id"] for row in everything("joptic", jo)}
    assert jo.delete(f"/_emulator/groups/{group_id}").status_code == 404


# --- Axim ---------------------------------------------------------------------------------------


def ax_group(ax: httpx.Client, group_id: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = get(ax, f"/productGroup/{group_id}", **params)["data"]
    return body


def test_axim_created_group_lists_last_with_no_products(ax: httpx.Client, t0: Now) -> None:
    group_id = created(ax, "group", name="Summer Sale Eyewear", restrictAccess=True)
    assert group_id[:8] == f"{int(t0.at.timestamp()):08x}" and len(group_id) == 24
    listed = get(ax, "/productGroup/all", search="eyewear")["data"]
    assert [(g["id"], g["productCount"], g["products"]) for g in listed] == [(group_id, 0, [])]
    assert (listed[0]["createdAt"], listed[0]["updatedAt"]) == (t0.ms(), t0.ms())
    assert listed[0]["restrictAccess"] is True and listed[0]["status"] is True
    total = get(ax, "/productGroup/all")["pagination"]["total"]
    last = get(ax, "/productGroup/all", limit=1, page=total)["data"]
    assert last[0]["id"] == group_id  # groups are ordered by createdAt
    assert ax_group(ax, group_id)["productGroup"]["name"] == "Summer Sale Eyewear"


def test_axim_group_update_bumps_updated_at_only(ax: httpx.Client, t0: Now) -> None:
    group = get(ax, "/productGroup/all", limit=1)["data"][0]
    changed(ax, "group", group["id"], name="Renamed group", status=False)
    after = get(ax, "/productGroup/all", limit=1)["data"][0]
    assert after == {**group, "name": "Renamed group", "status": False, "updatedAt": t0.ms()}


def test_axim_deleted_group_disappears_with_its_products(ax: httpx.Client) -> None:
    group = get(ax, "/productGroup/all", limit=1, productLimit=1)["data"][0]
    product_id = group["products"][0]["id"]
    total = get(ax, "/productGroup/all")["pagination"]["total"]
    deleted(ax, "group", group["id"])
    assert ax.get(f"/productGroup/{group['id']}").status_code == 404
    assert get(ax, "/productGroup/all")["pagination"]["total"] == total - 1
    assert ax.patch(f"/_emulator/products/{product_id}", json={"name": "x"}).status_code == 404


def test_axim_products_are_created_updated_and_deleted_in_their_group(
        ax: httpx.Client, t0: Now) -> None:
    group = next(g for g in get(ax, "/productGroup/all", limit=50)["data"]
                 if g["productCount"] == 7)
    product_id = created(ax, "product", group_id=group["id"], name="Lumio Lamp X1", price=49.5)
    one = ax_group(ax, group["id"], limit=5, page=2)
    assert one["pagination"] == {"page": 2, "total": 8, "count": 3, "limit": 5}
    product = one["products"][-1]
    assert (product["id"], product["name"], product["price"]) == (product_id, "Lumio Lamp X1", 49.5)
    assert (product["createdAt"], product["updatedAt"]) == (t0.ms(), t0.ms())
    listed = get(ax, "/productGroup/all", search=group["name"], productSearch=product["sku"])
    assert [p["id"] for g in listed["data"] for p in g["products"]] == [product_id]
    assert listed["data"][0]["productCount"] == 8

    changed(ax, "product", product_id, name="Lumio Lamp X2", status="draft")
    product = ax_group(ax, group["id"], search="X2")["products"][0]
    assert (product["name"], product["status"]) == ("Lumio Lamp X2", "draft")
    assert (product["createdAt"], product["updatedAt"]) == (t0.ms(), t0.ms(1))
    assert ax_group(ax, group["id"])["productGroup"] == {k: group[k] for k in (
        "id", "name", "status", "restrictAccess", "createdAt", "updatedAt")}

    deleted(ax, "product", product_id)
    one = ax_group(ax, group["id"], limit=50)
    assert one["pagination"]["total"] == 7 and product_id not in {p["id"] for p in one["products"]}


# --- Comestri -----------------------------------------------------------------------------------


def co_products(co: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = get(co, "/products", **params)["entries"]
    return entries


def test_comestri_created_product_is_found_by_the_time_windows(co: httpx.Client, t0: Now) -> None:
    product_id = created(co, "product", name="Linen Scarf", status="inactive")
    for window in ("updated_time_from", "created_time_from"):
        found = co_products(co, **{window: t0.seconds()})
        assert [(str(e["id"]), e["name"], e["status"]) for e in found] == [
            (product_id, "Linen Scarf", "inactive")]
        assert (found[0]["created_at"], found[0]["updated_at"]) == (t0.seconds(), t0.seconds())
    assert co_products(co, updated_time_to=t0.seconds(-1), id=product_id) == []
    last = get(co, "/products", per_page=1, page=get(co, "/products")["total_entries"])
    assert str(last["entries"][0]["id"]) == product_id  # ids keep growing: it comes last


def test_comestri_update_bumps_updated_at_within_the_window(co: httpx.Client, t0: Now) -> None:
    seeded_row = co_products(co, per_page=1)[0]
    changed(co, "product", str(seeded_row["id"]), name="Renamed Shirt", discontinued=True)
    found = co_products(co, updated_time_from=t0.seconds())
    assert found == [{**seeded_row, "name": "Renamed Shirt", "discontinued": True,
                      "updated_at": t0.seconds()}]


def test_comestri_deleted_product_disappears_with_its_child_skus(co: httpx.Client) -> None:
    every = everything("comestri", co)
    style = next(e for e in every if e["class_type"] == "style")
    children = [e for e in every if e["code"].startswith(style["code"] + "-")]
    assert children
    deleted(co, "product", str(style["id"]))
    assert co_products(co, id=str(style["id"])) == []
    remaining = {e["id"] for e in everything("comestri", co)}
    assert remaining == {e["id"] for e in every} - {style["id"]} - {c["id"] for c in children}


# --- every kind ---------------------------------------------------------------------------------


def change_everything(clients: dict[str, httpx.Client], kind: str) -> None:
    client = clients[kind]
    data_of = names(kind, client)
    some = {entity: next(i for (e, i) in data_of if e == entity)
            for entity in ("group", "product") if any(e == entity for e, _ in data_of)}
    if "group" in some:
        created(client, "group", name="Brand new")
        changed(client, "group", some["group"], name="Changed")
    if "product" in some:
        extra = {"group_id": some["group"]} if kind == "axim" else {}
        created(client, "product", name="Brand new product", **extra)
        changed(client, "product", some["product"], name="Changed product")
        deleted(client, "product", some["product"])
    if "group" in some:
        deleted(client, "group", some["group"], purge="true")


@pytest.mark.parametrize("kind", KINDS)
def test_reset_restores_the_seed(clients: dict[str, httpx.Client], kind: str) -> None:
    seed = everything(kind, clients[kind])
    change_everything(clients, kind)
    assert everything(kind, clients[kind]) != seed
    assert clients[kind].delete("/_emulator/data").json() == {"reset": True}
    assert everything(kind, clients[kind]) == seed


def test_two_apps_do_not_share_their_data(clients: dict[str, httpx.Client]) -> None:
    one, two = clients["joptic"], clients[SECOND_APP]
    seed = everything("joptic", two)
    new_id = created(one, "group", name="Only in the first")
    deleted(two, "group", seed[0]["id"])
    assert new_id in {g["id"] for g in everything("joptic", one)}
    assert [g["id"] for g in everything("joptic", two)] == [g["id"] for g in seed[1:]]
    assert seed[0]["id"] in {g["id"] for g in everything("joptic", one)}
    fresh = emulator_data(create_emulator("joptic"))
    assert new_id not in fresh.group_ids() and seed[0]["id"] in fresh.group_ids()


UNKNOWN = {"carecloud": "1", "joptic": "clxnosuchgroup00000000000", "axim": "f" * 24,
           "comestri": "999999999"}


@pytest.mark.parametrize(("kind", "entity"), [
    ("carecloud", "group"), ("joptic", "group"), ("axim", "group"), ("axim", "product"),
    ("comestri", "product")])
def test_unknown_ids_are_404(clients: dict[str, httpx.Client], kind: str, entity: str) -> None:
    client = clients[kind]
    path = f"/_emulator/{entity}s/{UNKNOWN[kind]}"
    for response in (client.patch(path, json={"name": "x"}), client.delete(path)):
        assert (response.status_code, response.json()) == (
            404, {"error": f"no {kind} {entity} {UNKNOWN[kind]!r}"})
    assert client.delete(f"/_emulator/{entity}s/{'9' * 5000}").status_code == 404


@pytest.mark.parametrize(("kind", "entity"), [
    ("carecloud", "product"), ("joptic", "product"), ("comestri", "group")])
def test_what_a_kind_lacks_is_404(clients: dict[str, httpx.Client], kind: str,
                                  entity: str) -> None:
    response = clients[kind].post(f"/_emulator/{entity}s", json={"name": "x"})
    assert (response.status_code, response.json()) == (
        404, {"error": f"{kind} has no {entity}s"})


BAD_BODIES: list[tuple[str, str, bytes, str]] = [
    ("joptic", "POST", b"{", "the body is not JSON"),
    ("joptic", "POST", b'["name"]', "the body must be a JSON object"),
    ("joptic", "POST", b"{}", "name: required"),
    ("joptic", "POST", b'{"name": "  "}', "name: expected a non-blank string"),
    ("joptic", "POST", b'{"name": "x", "updatedAt": "2031-01-01"}',
     "unknown field(s) of a joptic group: updatedAt"),
    ("joptic", "PATCH", b'{"status": true}', "status: expected one of 0, 1, got true"),
    ("carecloud", "PATCH", b'{"name": "' + b"x" * 501 + b'"}', "at most 500 characters"),
    ("carecloud", "POST", b'{"name": "x", "state": "1"}', 'state: expected one of 0, 1, got "1"'),
    ("axim", "POST", b'{"name": "x", "status": 1}', "status: expected one of true, false"),
    ("comestri", "PATCH", b'{"status": "deleted"}', "status: expected one of"),
    ("comestri", "POST", b'{"name": "x", "self": 1}', "unknown field(s) of a comestri product"),
    ("joptic", "POST", b'{"name": "' + b"x" * 70_000 + b'"}', "larger than 65536 bytes"),
]


@pytest.mark.parametrize(("kind", "method", "body", "problem"), BAD_BODIES)
def test_bad_bodies_are_400_naming_the_problem(clients: dict[str, httpx.Client], kind: str,
                                               method: str, body: bytes, problem: str) -> None:
    client = clients[kind]
    entity = "products" if kind == "comestri" else "groups"
    path = f"/_emulator/{entity}"
    if method == "PATCH":
        path += "/" + str(names(kind, client).popitem()[0][1])
    before = everything(kind, client)
    response = client.request(method, path, content=body,
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert problem in response.json()["error"]
    assert everything(kind, client) == before


def test_axim_products_need_an_existing_group(ax: httpx.Client) -> None:
    response = ax.post("/_emulator/products", json={"name": "Orphan"})
    assert (response.status_code, response.json()["error"]) == (
        400, "group_id: required (the id of the group the product joins)")
    response = ax.post("/_emulator/products", json={"name": "Orphan", "group_id": UNKNOWN["axim"]})
    assert response.status_code == 404 and UNKNOWN["axim"] in response.json()["error"]


def test_a_bad_purge_flag_is_400(jo: httpx.Client) -> None:
    group_id = get(jo, "/product-groups", limit=1)["data"][0]["id"]
    response = jo.delete(f"/_emulator/groups/{group_id}", params={"purge": "yes"})
    assert (response.status_code, response.json()) == (
        400, {"error": "purge: expected true or false, got 'yes'"})


def test_control_requests_are_not_logged(served: dict[str, RunningEmulator],
                                         jo: httpx.Client) -> None:
    served["joptic"].log.clear()
    group_id = created(jo, "group", name="Unlogged")
    changed(jo, "group", group_id, name="Still unlogged")
    deleted(jo, "group", group_id)
    get(jo, "/product-groups", limit=1)
    assert [r.path for r in served["joptic"].log.records] == ["/product-groups"]


def test_in_process_changes_are_served_and_safe_from_many_threads(
        served: dict[str, RunningEmulator], jo: httpx.Client) -> None:
    data = emulator_data(served["joptic"].app)
    made: list[str] = []
    lock = threading.Lock()

    def create(worker: int) -> None:
        for n in range(25):
            new_id = data.create_group(name=f"Threaded {worker}-{n}")
            with lock:
                made.append(new_id)

    workers = [threading.Thread(target=create, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(set(made)) == 100
    listed = [g for g in everything("joptic", jo) if (g["name"] or "").startswith("Threaded ")]
    assert {g["id"] for g in listed} == set(made)
    assert len({g["updatedAt"] for g in listed}) == 100  # one distinct change time each
    data.update_group(made[0], name="Threaded, renamed")
    data.delete_group(made[1])
    with pytest.raises(UnknownId):
        data.delete_group(made[1])
    with pytest.raises(BadChange):
        data.update_group(made[0], name=3)
    assert get(jo, "/product-groups", search="renamed")["data"][0]["id"] == made[0]


def test_change_times_never_go_backwards(clock: PinnedClock, jo: httpx.Client, t0: Now) -> None:
    first = created(jo, "group", name="First")
    clock.moment = t0.at - timedelta(days=1)  # the clock steps back
    second = created(jo, "group", name="Second")
    third = created(jo, "group", name="Third")
    newest = get(jo, "/product-groups", sortBy="updatedAt", sortOrder="desc", limit=3)["data"]
    assert [(g["id"], g["updatedAt"]) for g in newest] == [
        (third, t0.ms(2)), (second, t0.ms(1)),
        (first, t0.ms())]


def test_a_change_is_newer_than_the_seed_whatever_the_clock() -> None:
    app = create_emulator("joptic", now=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    with ServerThread({"joptic": app}) as server, \
            RunningEmulator("joptic", app, server.urls["joptic"], DEMO_TOKENS["joptic"]
                            ).client() as client:
        newest_seeded = get(client, "/product-groups", sortBy="updatedAt", limit=1)["data"][0]
        group_id = created(client, "group", name="Backdated clock")
        newest = get(client, "/product-groups", sortBy="updatedAt", limit=1)["data"][0]
    assert newest["id"] == group_id
    assert newest["updatedAt"] > newest_seeded["updatedAt"] >= "2025"


def test_creating_is_bounded(monkeypatch: pytest.MonkeyPatch, co: httpx.Client) -> None:
    monkeypatch.setattr(changes, "MAX_ADDED", 2)
    created(co, "product", name="One")
    created(co, "product", name="Two")
    response = co.post("/_emulator/products", json={"name": "Three"})
    assert response.status_code == 400
    assert "at most 2 items beyond its seed" in response.json()["error"]
    assert co.delete("/_emulator/data").status_code == 200
    created(co, "product", name="Three")


def test_every_kind_says_what_it_has(served: dict[str, RunningEmulator]) -> None:
    has = {}
    for kind in KINDS:
        data = emulator_data(served[kind].app)
        has[kind] = (data.has_groups, data.has_products)
    assert has == {"carecloud": (True, False), "joptic": (True, False), "axim": (True, True),
                   "comestri": (False, True)}
