"""``@defer`` in the playground, in a real browser: GraphiQL shows the first part of a multipart
answer as soon as it comes, then the deferred part merged into it.

GraphiQL 3.9's ``createFetcher`` asks every query and mutation with ``Accept: application/json,
multipart/mixed``, reads a ``multipart/mixed`` answer part by part (meros: a part is handed over
once the delimiter after it has arrived, and every part needs a ``Content-Type`` of
``application/json``) and merges each ``incremental`` entry into what the result pane shows.
The gateway over the session's emulators; Comestri, the only source of the deferred
``products``, answers 2 s late, so the groups come first. What the pane shows is read from the
page (its text, and every value its editor took), never from a screenshot.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from gateway.edge.playground import Playground
from tests.conftest import RunningEmulator, RunningGateway
from tests.playground.test_browser import TIMEOUT_MS, _guarded_page

pytestmark = pytest.mark.slow  # `make test-fast` skips this group

LATENCY_MS = 2000  # Comestri's: the deferred products wait for it, the groups do not
QUERY = """\
query Catalogue {
  groups: productGroups(first: 2) { nodes { name } }
  ... @defer(label: "slow") {
    products(first: 2) { nodes { name } }
  }
}"""
GROUPS = "{ groups: productGroups(first: 2) { nodes { name } } }"
PRODUCTS = "{ products(first: 2) { nodes { name } } }"

# Every value the result pane's editor takes from now on, with when (ms) it took it: GraphiQL
# empties the pane when a run starts, then sets it once per part (the parts merged so far).
RECORD_PANE = """() => {
    const editor = document.querySelector(".graphiql-response .CodeMirror").CodeMirror;
    const start = performance.now();
    window.paneValues = [];
    editor.on("change", () => {
        const text = editor.getValue();
        const last = window.paneValues[window.paneValues.length - 1];
        if (last === undefined || last.text !== text) {
            window.paneValues.push({ms: performance.now() - start, text});
        }
    });
}"""
SHOWN = "() => window.paneValues.filter(value => value.text !== '')"


def _data(page: Page, query: str) -> dict[str, Any]:
    """The ``data`` of ``query`` asked the ordinary way from the page (in the browser's
    language: CareCloud's names follow ``Accept-Language``)."""
    body: dict[str, Any] = page.evaluate("""async query => {
        const response = await fetch("/graphql", {method: "POST",
            headers: {"content-type": "application/json", accept: "application/json"},
            body: JSON.stringify({query})});
        return await response.json();
    }""", query)
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def _names(connection: dict[str, Any]) -> list[str]:
    return [node["name"] for node in connection["nodes"]]


def _pane(value: dict[str, Any]) -> dict[str, Any]:
    text: str = value["text"]
    try:
        shown: dict[str, Any] = json.loads(text)
    except ValueError:
        pytest.fail(f"the result pane shows no JSON answer: {text[:2000]}")
    return shown


def test_graphiql_shows_both_parts_of_a_deferred_query(
    gateway_server: RunningGateway, emulator: Callable[[str], RunningEmulator],
    browser: Browser,
) -> None:
    if not Playground().installed():
        pytest.fail("the playground's files are not installed under build/playground: "
                    "run `make setup` (it needs npm)")
    gateway = gateway_server.url
    page, outside = _guarded_page(browser, gateway)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{gateway}/graphql")
        # What each part must hold, asked the ordinary way before Comestri slows down (the
        # test gateway caches nothing: the deferred query reaches Comestri again).
        groups = _data(page, GROUPS)["groups"]
        products = _data(page, PRODUCTS)["products"]
        assert _names(groups) and _names(products)
        emulator("comestri").faults.set(latency_ms=LATENCY_MS)

        editor = page.locator(".graphiql-query-editor .CodeMirror")
        expect(editor).to_contain_text("query Tour")  # DEFAULT_QUERY
        editor.evaluate("(node, query) => node.CodeMirror.setValue(query)", QUERY)
        # GraphiQL reads the operation name from an edit 100 ms later (debounced): run once
        # it has stored the query, as the other browser tests do.
        page.wait_for_function("q => localStorage.getItem('graphiql:query') === q", arg=QUERY)
        page.evaluate(RECORD_PANE)

        button = page.locator(".graphiql-execute-button")
        result = page.locator(".graphiql-response .result-window")
        with page.expect_response(lambda response: response.request.method == "POST"
                                  and "Catalogue" in (response.request.post_data or "")
                                  ) as answered:
            started = time.monotonic()
            button.click()
        request_accept = answered.value.request.headers.get("accept", "")
        content_type = answered.value.headers.get("content-type", "")

        # The first part: the groups, and no products yet.
        page.wait_for_function(f"() => ({SHOWN})().length > 0")
        first_seconds = time.monotonic() - started
        first = _pane(page.evaluate(SHOWN)[0])
        assert content_type.startswith("multipart/mixed"), (
            f"the gateway answered GraphiQL's @defer query ({request_accept=}) with "
            f"{content_type!r}, not multipart/mixed; the pane shows {first}")
        assert "errors" not in first, first
        assert first["data"] == {"groups": groups}, first
        for name in _names(groups):
            expect(result).to_contain_text(json.dumps(name, ensure_ascii=False))
        for name in _names(products):
            expect(result).not_to_contain_text(json.dumps(name, ensure_ascii=False))
        expect(button).to_have_attribute("aria-label", "Stop query (Ctrl-Enter)")  # still open

        # Then, within seconds, the products merged in beside them.
        for name in _names(products):
            expect(result).to_contain_text(json.dumps(name, ensure_ascii=False),
                                           timeout=TIMEOUT_MS)
        for name in _names(groups):
            expect(result).to_contain_text(json.dumps(name, ensure_ascii=False))
        expect(button).to_have_attribute("aria-label", "Execute query (Ctrl-Enter)",
                                         timeout=TIMEOUT_MS)  # the answer has ended
        shown = page.evaluate(SHOWN)
    finally:
        page.close()

    assert outside == [], f"the playground reached outside the gateway: {outside}"
    assert errors == [], f"the page threw: {errors}"
    assert first_seconds < LATENCY_MS / 1000, (
        f"the first part took {first_seconds:.2f} s: it waited for the deferred one")
    panes = [_pane(value) for value in shown]
    assert len(panes) == 2, f"the pane showed {len(panes)} answers, not 2 parts: {panes}"
    merged = panes[1]
    assert "errors" not in merged, merged
    assert merged["data"] == {"groups": groups, "products": products}, merged
    gap_ms = shown[1]["ms"] - shown[0]["ms"]
    assert LATENCY_MS / 2 <= gap_ms <= LATENCY_MS + 5000, (
        f"the deferred part came {gap_ms:.0f} ms after the first")
