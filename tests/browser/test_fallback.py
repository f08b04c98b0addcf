"""`auto` steps down when a transport is refused, settles on the best one that works, and says
why: WebSocket upgrades refused -> SSE; SSE refused as well -> long poll."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Route, expect

from tests.browser.conftest import NewTab
from tests.browser.pages import by_testid, messages, open_chat
from tests.fixtures.server import ServerFactory

pytestmark = pytest.mark.browser

# What a refused transport makes the browser itself log (the client cannot silence those).
REFUSED_NOISE = (
    r"WebSocket connection to .* failed",
    r"Failed to load resource: the server responded with a status of 403",
    r"EventSource's response has a MIME type",
)


NO_WS = {"ws_upgrades_enabled": "false"}
NO_WS_NO_SSE = {"ws_upgrades_enabled": "false", "sse_enabled": "false"}


@pytest.mark.parametrize(
    ("settings", "expected", "refused"),
    [
        (NO_WS, "sse", ["websocket"]),
        (NO_WS_NO_SSE, "longpoll", ["websocket", "sse"]),
    ],
    ids=["no-websocket", "no-websocket-no-sse"],
)
def test_auto_settles_on_the_best_transport_left(
    start_server: ServerFactory,
    new_tab: NewTab,
    settings: dict[str, str],
    expected: str,
    refused: list[str],
) -> None:
    server = start_server(**settings)
    alice = new_tab()
    page = alice.page
    page.goto(f"{server.url}/chat/fallback")
    by_testid(page, "signin-name").fill("alice")
    by_testid(page, "signin-submit").click()
    expect(by_testid(page, "transport-picker")).to_have_value("auto")
    expect(by_testid(page, "conn-state")).to_have_text("live")
    expect(by_testid(page, "conn-transport")).to_have_text(expected)
    reason = by_testid(page, "transport-reason")
    for name in refused:
        expect(reason).to_contain_text(f"{name} is turned off on this server")
    expect(reason).to_contain_text(expected)

    # And it works: a message from a second person arrives.
    bob = new_tab()
    open_chat(bob.page, server.url, "fallback", "bob", "shortpoll")
    by_testid(bob.page, "message-input").fill("can you hear me?")
    by_testid(bob.page, "message-input").press("Enter")
    expect(messages(page).filter(has_text="can you hear me?")).to_have_count(1)
    assert alice.console_errors(allow=REFUSED_NOISE) == []


def test_auto_steps_down_on_refusals_alone(start_server: ServerFactory, new_tab: NewTab) -> None:
    """Where GET /api/info says nothing (an older server, a proxy in the way), `auto` learns from
    the refusals themselves: it tries WebSocket, then SSE, and settles on long poll."""
    server = start_server(**NO_WS_NO_SSE)
    tab = new_tab()
    page = tab.page
    page.route("**/api/info", lambda route: route.fulfill(status=404, json={"error": {}}))
    # This tab's own connection: a shared one runs in a SharedWorker, which page.route misses.
    page.goto(f"{server.url}/chat/refusals?share=off")
    by_testid(page, "signin-name").fill("alice")
    by_testid(page, "signin-submit").click()
    expect(by_testid(page, "conn-state")).to_have_text("live")
    expect(by_testid(page, "conn-transport")).to_have_text("longpoll")
    reason = by_testid(page, "transport-reason")
    expect(reason).to_contain_text(re.compile(r"^websocket refused .*; sse .*403.*longpoll$"))
    assert tab.console_errors(allow=(*REFUSED_NOISE, r"status of 404 .*/api/info")) == []


def test_a_channel_ready_during_a_step_down_does_not_retry_the_refused_transport(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    """While `auto` asks GET /api/info why a transport was refused, a second channel becoming
    ready must not open another connection on the refused transport: that one would fail too,
    and the story would say "websocket refused" twice and skip SSE's turn."""
    server = start_server(**NO_WS_NO_SSE)
    tab = new_tab()
    page = tab.page
    held: list[Route] = []

    def info(route: Route) -> None:
        if held:
            route.fulfill(status=404, json={"error": {}})
        else:
            held.append(route)  # the first step down waits here until the test lets it go

    page.route("**/api/info", info)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(f"{server.url}/healthz")
    with page.expect_request("**/api/info"):
        page.evaluate(
            """async () => {
              const { FourcastClient } = await import('/static/js/fourcast.js');
              window.client = new FourcastClient({ transport: 'auto' });
              window.client.subscribe('public:first', () => {});
            }"""
        )
    assert len(sockets) == 1, sockets
    # The second channel becomes ready while the step down is waiting for /api/info.
    page.evaluate(
        """() => new Promise((resolve) => {
          window.client.on('subscribed', ({ channel }) => channel === 'public:second' && resolve());
          window.client.subscribe('public:second', () => {});
        })"""
    )
    assert len(held) == 1
    held[0].fulfill(status=404, json={"error": {}})
    page.wait_for_function("() => window.client.state === 'live'")
    assert page.evaluate("() => window.client.transport") == "longpoll"
    reason = page.evaluate("() => window.client.reason")
    assert re.fullmatch(r"websocket refused .*; sse .*403.*longpoll", reason), reason
    assert len(sockets) == 1, sockets
