"""Input a source cannot take is the client's error, found before any upstream call.

Over real sockets, with the emulators' request logs: ``Accept-Language`` headers, dates, long
strings, Comestri's status, forged and rotated cursors, repeated source errors, and the log lines a
request can cause. Every test here scans what it saw and logged for the configured secrets.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from gateway.config import Config, parse_config
from gateway.demo import demo_config
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from gateway.emulators import DEMO_TOKENS
from gateway.graph.inputs import MAX_STRING_LENGTH
from gateway.ids import NodeKey, NodeType, encode_id
from gateway.languages import MAX_HEADER_LENGTH
from tests.conftest import UNCACHED, RunningGateway
from tests.graph_e2e.conftest import Emulators, clear_logs, upstream_requests
from tests.helpers import codes, post
from tests.leaks import SecretScan

GROUPS_AND_PRODUCTS = """{
  groups: productGroups(first: 3, orderBy: {field: NAME}) { nodes { name source { id } } }
  page: productGroups(first: 3) { nodes { name } }
  products(first: 3) { nodes { name } }
}"""
CARECLOUD_PAGE = """query($after: String) {
  productGroups(first: 3, after: $after, filter: {sources: ["carecloud"]}) {
    pageInfo { endCursor } nodes { upstreamId } } }"""


def refused(response: httpx.Response, *names: str) -> dict[str, Any]:
    """The body of an answer whose only error is BAD_USER_INPUT naming each of ``names``."""
    body: dict[str, Any] = response.json()
    assert codes(body) == ["BAD_USER_INPUT"], body
    for name in names:
        assert name in body["errors"][0]["message"], body
    return body


@contextmanager
def gateway(config: Config) -> Iterator[str]:
    with ServerThread({"gw": create_app(config)}, log_level="debug") as servers:
        yield servers.urls["gw"]


def urls(emulators: Emulators) -> dict[str, str]:
    return {kind: running.url for kind, running in emulators.items()}


# -- Accept-Language ----------------------------------------------------------------------------


@pytest.mark.parametrize("header", [
    "čeština".encode(), b"en-\xff", "en;q=2", "en;q=0.5000", "en us", "en_US", "en-",
    "toolonglanguage", "en;level=1", "en,,;q=1", "x" * (MAX_HEADER_LENGTH + 1),
    ", ".join(["en"] * 100)])
def test_a_malformed_accept_language_is_refused_before_any_upstream_call(
        gateway_server: RunningGateway, emulators: Emulators, no_secret_leaks: SecretScan,
        header: str | bytes) -> None:
    response = post(gateway_server.url, GROUPS_AND_PRODUCTS, headers={"Accept-Language": header},
                    scan=no_secret_leaks)
    assert response.status_code == 400
    body = refused(response, "Accept-Language")
    assert "data" not in body
    assert upstream_requests(emulators) == 0


@pytest.mark.parametrize("header", [
    "", "*", "en", "en-GB, cs;q=0.8", "de-AT;q=0.5, fr, *;q=0.1", "i-klingon",
    "zh-Hant-CN-x-private1", "en;Q=1.000", "en , , cs", "x" * 8])
def test_well_formed_ranges_are_answered(gateway_server: RunningGateway, emulators: Emulators,
                                         no_secret_leaks: SecretScan, header: str) -> None:
    response = post(gateway_server.url, GROUPS_AND_PRODUCTS, headers={"Accept-Language": header},
                    scan=no_secret_leaks)
    assert response.status_code == 200
    assert response.json().get("errors") is None, response.json()
    sent = {r.headers.get("accept-language") for r in emulators["carecloud"].log.records}
    assert sent <= {"cs", "en"}, sent  # never the client's header as given
    others = [r for kind in ("joptic", "axim", "comestri") for r in emulators[kind].log.records]
    assert others and all("accept-language" not in r.headers for r in others)


def test_a_thousand_accept_languages_cost_a_handful_of_upstream_requests(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    """Every new header value used to make fresh cache keys and a fresh group-table scan."""
    config = demo_config(urls(emulators))
    no_secret_leaks.add_secret(config.server.cursor_secret.get_secret_value())  # type: ignore[union-attr]
    headers = [f"de-{i:04d}, en;q=0.{i % 9 + 1}" if i % 3 else f"x-{i}, cs-CZ;q=0.{i % 7 + 1}"
               for i in range(1000)]
    assert len(set(headers)) == 1000
    answers: dict[str, Any] = {}
    with gateway(config) as url, httpx.Client(base_url=url, timeout=30) as client:
        for header in headers:
            response = client.post("/graphql", json={"query": GROUPS_AND_PRODUCTS},
                                   headers={"Accept-Language": header})
            body = response.json()
            assert body.get("errors") is None, body
            answers.setdefault(header[0], body)  # "d…": English preferred, "x…": Czech
        no_secret_leaks.seen(response.text)
    requests = {kind: [(r.path, r.query, r.headers.get("accept-language"))
                       for r in running.log.records] for kind, running in emulators.items()}
    counts = {kind: len(made) for kind, made in requests.items()}
    # CareCloud: its table and a page, in each of its two languages; the others ignore the
    # language: one table scan (Joptic: pages of 100, Axim: pages of 50) and the list pages.
    assert counts["carecloud"] <= 4, requests["carecloud"]
    assert {lang for *_, lang in requests["carecloud"]} == {"cs", "en"}
    for kind in ("joptic", "axim", "comestri"):
        assert counts[kind] <= 8, (kind, requests[kind])
        assert len(set(requests[kind])) == counts[kind]  # no request made twice
    # Names follow the language the client prefers among CareCloud's.
    assert answers["d"] != answers["x"]


# -- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("argument", "value"), [
    ("createdAfter", "9999-12-31T23:59:59.5Z"),  # rounds up past the last second
    ("createdBefore", "9999-12-31T23:00:00-05:00"),  # year 10000 in UTC
    ("updatedAfter", "0001-01-01T00:00:00+05:00"),  # year 0 in UTC
    ("updatedBefore", "9999-12-31T23:59:59.999999Z")])
def test_dates_outside_what_comestri_takes_are_refused_first(
        gateway_server: RunningGateway, emulators: Emulators, no_secret_leaks: SecretScan,
        argument: str, value: str) -> None:
    query = "query($t: DateTime) { products(filter: {ARG: $t}) { totalCount } }"
    response = post(gateway_server.url, query.replace("ARG", argument), {"t": value},
                    scan=no_secret_leaks)
    body = refused(response, f"filter.{argument}", "comestri")
    assert body["errors"][0]["extensions"]["source"] == "comestri"
    assert upstream_requests(emulators) == 0


def test_early_years_are_sent_zero_padded(gateway_server: RunningGateway, emulators: Emulators,
                                          no_secret_leaks: SecretScan) -> None:
    response = post(gateway_server.url, """{ products(filter: {
        createdAfter: "0843-02-03T04:05:06.5Z", updatedBefore: "9999-12-31T23:59:59Z"})
        { totalCount } }""", scan=no_secret_leaks)
    body = response.json()
    assert body.get("errors") is None, body
    assert body["data"]["products"]["totalCount"] > 0
    [request] = emulators["comestri"].log.records
    assert request.param("created_time_from") == "0843-02-03T04:05:07Z"
    assert request.param("updated_time_to") == "9999-12-31T23:59:59Z"


# -- strings ------------------------------------------------------------------------------------

LONG = "x" * 65_536


@pytest.mark.parametrize(("query", "argument"), [
    ('{ products(filter: {search: $s}) { totalCount } }', "filter.search"),
    ('{ products(filter: {code: $s}) { totalCount } }', "filter.code"),
    ('{ products(filter: {status: $s}) { totalCount } }', "filter.status"),
    ('{ products(filter: {sources: [$s]}) { totalCount } }', "filter.sources"),
    ('{ productGroups(filter: {search: $s}) { totalCount } }', "filter.search"),
    ('{ productGroups(filter: {storeId: $s}) { totalCount } }', "filter.storeId"),
    ('{ productGroups(filter: {code: $s}) { totalCount } }', "filter.code"),
    ('{ productGroups(filter: {externalId: $s}) { totalCount } }', "filter.externalId"),
    ('{ productGroups(filter: {sources: [$s]}) { totalCount } }', "filter.sources"),
])
def test_long_strings_are_refused_naming_the_argument(
        gateway_server: RunningGateway, emulators: Emulators, no_secret_leaks: SecretScan,
        query: str, argument: str) -> None:
    typed = query.replace("{", "query($s: String!) {", 1)
    if "sources" in query:
        typed = typed.replace("String!", "ID!")
    response = post(gateway_server.url, typed, {"s": LONG}, scan=no_secret_leaks)
    refused(response, f"`{argument}`", str(MAX_STRING_LENGTH))
    assert LONG[:MAX_STRING_LENGTH] not in response.text  # not echoed back
    assert upstream_requests(emulators) == 0
    # At the cap exactly, the string is the source's to answer.
    if "sources" not in query and "status" not in query:
        at_cap = post(gateway_server.url, typed, {"s": "y" * MAX_STRING_LENGTH},
                      scan=no_secret_leaks).json()
        assert at_cap.get("errors") is None, at_cap


def test_a_long_nested_product_search_goes_nowhere(
        gateway_server: RunningGateway, emulators: Emulators,
        no_secret_leaks: SecretScan) -> None:
    """The look-ahead that folds nested product pages into the group call skips it too."""
    response = post(gateway_server.url, """query($s: String) {
        productGroups(first: 2, filter: {sources: ["axim"]}) {
          nodes { name products(first: 2, search: $s) { totalCount } } } }""", {"s": LONG},
                    scan=no_secret_leaks)
    body = response.json()
    assert set(codes(body)) == {"BAD_USER_INPUT"}, body
    assert all("`search`" in e["message"] for e in body["errors"])
    records = emulators["axim"].log.records
    assert records and all(len(r.query) < 1000 for r in records)


def test_a_status_comestri_refuses_is_the_clients_error(
        gateway_server: RunningGateway, emulators: Emulators,
        no_secret_leaks: SecretScan) -> None:
    response = post(gateway_server.url, '{ products(filter: {status: "ACTIVE"}) { totalCount } }',
                    scan=no_secret_leaks)
    refused(response, "`filter.status`", "active, inactive")
    assert upstream_requests(emulators) == 0
    fine = post(gateway_server.url, '{ products(filter: {status: "inactive"}) { totalCount } }',
                scan=no_secret_leaks).json()
    assert fine.get("errors") is None, fine


# -- cursors ------------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def test_forged_and_tampered_cursors_are_invalid_before_any_upstream_call(
        gateway_server: RunningGateway, emulators: Emulators,
        no_secret_leaks: SecretScan) -> None:
    first = post(gateway_server.url, CARECLOUD_PAGE, scan=no_secret_leaks).json()
    cursor = first["data"]["productGroups"]["pageInfo"]["endCursor"]
    payload, tag = cursor.split(".")
    version, fp, stream, offsets = json.loads(base64.urlsafe_b64decode(payload + "=="))
    clear_logs(emulators)
    forged = [
        _b64(json.dumps(["1", fp, 0, [1e308]]).encode()),  # the old unsigned kind, offset 1e308
        _b64(json.dumps([version, fp, stream, [10**300]]).encode()) + "." + tag,
        _b64(json.dumps([version, fp, stream, [offsets[0] + 100]]).encode()) + "." + tag,
        payload + "." + tag[:-2] + ("AA" if tag[-2:] != "AA" else "BA"),
        payload,
    ]
    for value in forged:
        response = post(gateway_server.url, CARECLOUD_PAGE, {"after": value},
                        scan=no_secret_leaks)
        refused(response, "`after`", "invalid cursor")
    assert upstream_requests(emulators) == 0
    again = post(gateway_server.url, CARECLOUD_PAGE, {"after": cursor}, scan=no_secret_leaks)
    assert again.json().get("errors") is None


def _secret_config(emulators: Emulators, secret: str, previous: tuple[str, ...] = ()) -> Config:
    """The demo's sources, with these cursor secrets (validated as a file's would be)."""
    return parse_config({
        "server": {"cursor_secret": secret, "previous_cursor_secrets": list(previous)},
        "defaults": UNCACHED,
        "sources": [{"name": kind, "kind": kind, "base_url": url, "token": DEMO_TOKENS[kind]}
                    for kind, url in urls(emulators).items()]})


def test_a_cursor_signed_with_the_previous_secret_works_after_rotation(
        emulators: Emulators, no_secret_leaks: SecretScan) -> None:
    old, new = "the-cursor-secret-before-rotation", "the-cursor-secret-after-rotation"
    for secret in (old, new):
        no_secret_leaks.add_secret(secret)
    before = _secret_config(emulators, old)
    rotated = _secret_config(emulators, new, (old,))
    dropped = _secret_config(emulators, new)
    with ServerThread({"before": create_app(before), "rotated": create_app(rotated),
                       "dropped": create_app(dropped)}, log_level="debug") as servers:
        base = servers.urls
        first = post(base["before"], CARECLOUD_PAGE, scan=no_secret_leaks).json()
        cursor = first["data"]["productGroups"]["pageInfo"]["endCursor"]
        expected = post(base["before"], CARECLOUD_PAGE, {"after": cursor},
                        scan=no_secret_leaks).json()
        assert expected.get("errors") is None, expected
        after_rotation = post(base["rotated"], CARECLOUD_PAGE, {"after": cursor},
                              scan=no_secret_leaks).json()
        assert after_rotation.get("errors") is None, after_rotation
        nodes = after_rotation["data"]["productGroups"]["nodes"]
        assert nodes == expected["data"]["productGroups"]["nodes"]
        # New cursors are signed with the new secret: the old gateway cannot read them.
        new_cursor = after_rotation["data"]["productGroups"]["pageInfo"]["endCursor"]
        refused(post(base["before"], CARECLOUD_PAGE, {"after": new_cursor},
                     scan=no_secret_leaks), "invalid cursor")
        # Once the old secret is dropped from the list, its cursors are invalid.
        refused(post(base["dropped"], CARECLOUD_PAGE, {"after": cursor}, scan=no_secret_leaks),
                "invalid cursor")
        assert post(base["dropped"], CARECLOUD_PAGE, {"after": new_cursor},
                    scan=no_secret_leaks).json().get("errors") is None


# -- repeated errors, bounded logs --------------------------------------------------------------


def test_repeated_source_errors_are_reported_once_with_a_count(
        gateway_server: RunningGateway, emulators: Emulators,
        no_secret_leaks: SecretScan) -> None:
    emulators["comestri"].faults.set(status=503)
    ids = [encode_id(NodeKey(NodeType.PRODUCT, "comestri", str(n))) for n in range(1, 8)]
    body = post(gateway_server.url, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
                {"ids": ids}, scan=no_secret_leaks).json()
    assert body["data"]["nodes"] == [None] * 7
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert error["extensions"]["source"] == "comestri"
    assert error["extensions"]["count"] == 7
    assert error["path"] == ["nodes"]


def test_unexpected_errors_of_one_request_log_a_bounded_number_of_lines(
        emulators: Emulators, no_secret_leaks: SecretScan, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """A bug hit by every alias of a request (once: 21,301 lines for one 70 KB request) logs a
    few tracebacks, and a few more per minute however many requests hit it."""
    config = demo_config(urls(emulators), defaults=UNCACHED)
    no_secret_leaks.add_secret(config.server.cursor_secret.get_secret_value())  # type: ignore[union-attr]
    app = create_app(config)

    async def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("an injected bug")

    monkeypatch.setattr(app.state.runtime.adapters["joptic"], "groups_by_ids", bug)
    # A nullable field per alias: each fails on its own, beside the others.
    ids = [encode_id(NodeKey(NodeType.PRODUCT_GROUP, "joptic", str(i))) for i in range(20)]
    query = "{ " + " ".join(f'a{i}: node(id: "{id}") {{ id }}' for i, id in enumerate(ids)) + " }"
    records: list[logging.LogRecord] = []

    class Kept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Kept()
    logger = logging.getLogger("gateway.errors")
    with ServerThread({"gw": app}, log_level="debug") as servers:
        logger.addHandler(handler)  # after the server configured logging (which resets it)
        try:
            for _ in range(5):
                body = post(servers.urls["gw"], query, scan=no_secret_leaks).json()
                assert codes(body) == ["INTERNAL_SERVER_ERROR"] * 20
                assert all(e["message"] == "Internal server error" for e in body["errors"])
        finally:
            logger.removeHandler(handler)
    # 100 unexpected errors: three tracebacks for the first request, two more for the second
    # (five per bug a minute), and one line per request counting the rest.
    lines = [r.getMessage() for r in records]
    assert [bool(r.exc_info) for r in records] == [True] * 3 + [False] + [True] * 2 + [False] * 4
    assert lines[3] == "17 more unexpected errors in this request were not logged", lines
    assert "(15 like it not logged before)" not in lines[4]  # the second request's first
