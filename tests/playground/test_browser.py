"""The GraphiQL playground in a real browser: Debian's Chromium, driven by Playwright.

The gateway is configured as ``python -m gateway demo`` (``make run``) configures it, over the
session's emulators, and served on a real socket. Every request a page makes is routed: any
origin but the gateway's is aborted and recorded, so the test proves the playground needs no
internet. Chromium and the playground's files are prerequisites (CI installs Debian's chromium;
``make setup`` installs the files): when either is missing the tests fail, they never skip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from gateway.changes.events import ChangeEvent, ChangeType, Topic
from gateway.changes.feed import ChangeFeed
from gateway.config import Config
from gateway.demo import demo_config
from gateway.edge.app import create_app
from gateway.edge.playground import Playground
from gateway.edge.serving import ServerThread
from gateway.scope import RequestScope
from gateway.sources.records import GroupRecord
from tests.conftest import RunningEmulator

pytestmark = pytest.mark.slow  # `make test-fast` skips this group

SCREENSHOT = Path(__file__).resolve().parents[2] / "build" / "screenshots" / "playground.png"
QUERY = "{ sources { id kind } }"
TIMEOUT_MS = 10_000


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture(scope="module")
def demo(emulator_servers: dict[str, RunningEmulator]) -> Config:
    """The configuration ``python -m gateway demo`` builds, over the session's emulators."""
    return demo_config({kind: e.url for kind, e in emulator_servers.items()})


@pytest.fixture(scope="module")
def gateway(demo: Config) -> Iterator[str]:
    """The URL of ``make run``'s gateway app, served on a real socket."""
    if not Playground().installed():
        pytest.fail("the playground's files are not installed under build/playground: "
                    "run `make setup` (it needs npm)")
    with ServerThread({"gateway": create_app(demo)}) as servers:
        yield servers.urls["gateway"]


def _guarded_page(browser: Browser, gateway: str) -> tuple[Page, list[str]]:
    """A page in a fresh context whose requests to any origin but ``gateway`` are aborted and
    recorded (the list returned)."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []

    def route(route: Route) -> None:
        if _origin(route.request.url) == gateway:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return page, outside


def test_graphiql_runs_a_query_with_no_internet(gateway: str, browser: Browser) -> None:
    started = time.monotonic()
    page, outside = _guarded_page(browser, gateway)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        response = page.goto(f"{gateway}/graphql")
        assert response is not None and response.status == 200
        assert response.headers["content-type"].startswith("text/html")

        editor = page.locator(".graphiql-query-editor .CodeMirror")
        expect(editor).to_contain_text("query Tour")  # DEFAULT_QUERY
        editor.evaluate("(node, query) => node.CodeMirror.setValue(query)", QUERY)
        # GraphiQL reads the operation name from an edit 100 ms later (debounced), then stores
        # the query: run once it has, as a person would, or it sends the default's name.
        page.wait_for_function("q => localStorage.getItem('graphiql:query') === q", arg=QUERY)

        page.locator(".graphiql-execute-button").click()
        result = page.locator(".graphiql-response .result-window")
        expect(result).to_contain_text('"carecloud"')
        expect(result).to_contain_text('"AXIM"')
        expect(result).not_to_contain_text('"errors"')

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
    finally:
        page.close()
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 20_000
    assert outside == [], f"the playground reached outside the gateway: {outside}"
    assert errors == [], f"the page threw: {errors}"
    assert time.monotonic() - started < 30


def test_graphiql_stale_operation_name_gets_a_graphql_error(
    gateway: str, browser: Browser
) -> None:
    page, outside = _guarded_page(browser, gateway)
    try:
        page.goto(f"{gateway}/graphql")
        # The request GraphiQL's fetcher makes after `{ sources { id } }` replaced the default.
        status, content_type, text = page.evaluate("""async () => {
            const response = await fetch("/graphql", {method: "POST",
                headers: {"content-type": "application/json", accept: "application/json"},
                body: JSON.stringify({query: "{ sources { id } }",
                                      operationName: "Tour"})});
            return [response.status, response.headers.get("content-type"),
                    await response.text()];
        }""")
    finally:
        page.close()
    assert outside == []
    assert status in (200, 400), text
    assert content_type.startswith("application/json"), (content_type, text)
    assert "Tour" in text


def test_no_graphiql_when_disabled(demo: Config, browser: Browser) -> None:
    config = demo.model_copy(
        update={"server": demo.server.model_copy(update={"graphiql": False})})
    with ServerThread({"gateway": create_app(config)}) as servers:
        gateway = servers.urls["gateway"]
        page, outside = _guarded_page(browser, gateway)
        try:
            response = page.goto(f"{gateway}/graphql")
            assert response is not None and response.status >= 400
            assert not response.headers.get("content-type", "").startswith("text/html")
            assert page.locator(".graphiql-container").count() == 0
            assert "GraphiQL" not in page.content()
        finally:
            page.close()
        asset = httpx.get(f"{gateway}/playground/graphiql.js", timeout=10)
        assert asset.status_code == 404
    assert outside == []


SUBSCRIPTION = "subscription { productGroupChanged { change eventId node { id } } }"


def test_graphiql_runs_a_subscription(demo: Config, browser: Browser) -> None:
    watched = [source.model_copy(update={"poll_interval_seconds": 3600})
               for source in demo.sources]
    app = create_app(demo.model_copy(update={"sources": watched}))
    feed: ChangeFeed = app.state.changes

    def announce(group: GroupRecord, change: ChangeType) -> str:
        async def publish() -> str:
            await feed.announce([ChangeEvent(Topic.GROUPS, change, group.source.id, group,
                                             datetime.now(UTC))])
            return (await feed.backend.replay("0-0"))[-1].id
        return servers.run(publish())

    def wait_subscribers(count: int) -> None:
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while len(feed.hub) != count:
            assert time.monotonic() < deadline, f"{len(feed.hub)} subscriptions, not {count}"
            time.sleep(0.02)

    with ServerThread({"gateway": app}) as servers:
        gateway = servers.urls["gateway"]
        group: GroupRecord = servers.run(
            app.state.runtime.adapters["joptic"].group_table(RequestScope()))[0]
        page, outside = _guarded_page(browser, gateway)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(f"{gateway}/graphql")
            editor = page.locator(".graphiql-query-editor .CodeMirror")
            expect(editor).to_contain_text("query Tour")
            editor.evaluate("(node, query) => node.CodeMirror.setValue(query)", SUBSCRIPTION)
            page.wait_for_function("q => localStorage.getItem('graphiql:query') === q",
                                   arg=SUBSCRIPTION)
            page.locator(".graphiql-execute-button").click()
            wait_subscribers(1)  # over a WebSocket to the page's own origin
            result = page.locator(".graphiql-response .result-window")
            first = announce(group, ChangeType.UPDATED)
            expect(result).to_contain_text(first)
            expect(result).to_contain_text(group.id)
            second = announce(group, ChangeType.DELETED)  # the stream goes on
            expect(result).to_contain_text(second)
            expect(result).to_contain_text('"DELETED"')
            page.locator(".graphiql-execute-button").click()  # the stop button now
            wait_subscribers(0)
        finally:
            page.close()
    assert outside == [], f"the playground reached outside the gateway: {outside}"
    assert errors == [], f"the page threw: {errors}"
