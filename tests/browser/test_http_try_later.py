"""`auto` and an SSE stream or a poll refused "later" (a 429, a 503 with Retry-After) at once.

Such a refusal asks for a wait, not for another transport: the browser client waits at least the
Retry-After and tries the same transport again, as the Python client marks the refusal `busy`
(app/client/transports/base.py), instead of stepping down. A 429 without Retry-After is "later"
too (the client's backoff is the wait); a 503 without Retry-After still steps down. The refusal
here is Playwright's route standing in for the server (or a proxy in front of it): it answers the
first request with the status and lets the next ones through.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, Route

from tests.browser.conftest import NewTab
from tests.browser.pages import AUTO_CLIENT, drops_of
from tests.fixtures.server import ServerFactory

pytestmark = pytest.mark.browser

RETRY_AFTER_S = 1
STREAM = re.compile(r"/api/channels/[^/?]+/stream")
EVENTS = re.compile(r"/api/channels/[^/?]+/events")
NO_WS = {"ws_upgrades_enabled": "false"}
NO_WS_NO_SSE = {"ws_upgrades_enabled": "false", "sse_enabled": "false"}


class Front:
    """In front of the server: the first request (whose URL holds `only`) answered `status`
    (with Retry-After if `retry_after`), the next ones passed through."""

    def __init__(self, status: int, retry_after: int | None, only: str = "") -> None:
        self.status = status
        self.retry_after = retry_after
        self.only = only
        self.seen: list[float] = []  # when each request reached the route (monotonic s)

    def route(self, route: Route) -> None:
        if self.only not in route.request.url:
            route.continue_()
            return
        self.seen.append(time.monotonic())
        if len(self.seen) > 1:
            route.continue_()
            return
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        code = "rate_limited" if self.status == 429 else "unavailable"
        body = {"error": {"code": code, "message": "come back later"}}
        route.fulfill(status=self.status, headers=headers, json=body)


def refusals(page: Page) -> list[dict[str, object]]:
    """The drops the client reported for a 429 or 503."""
    return [d for d in drops_of(page, "code", "minDelay", "useful") if d["code"] in (429, 503)]


@pytest.mark.parametrize(
    ("settings", "pattern", "only", "transport"),
    # The poll's reads carry `after=` (the subscribe's first read, to learn where "now" is, not).
    [(NO_WS, STREAM, "", "sse"), (NO_WS_NO_SSE, EVENTS, "after=", "longpoll")],
    ids=["sse", "longpoll"],
)
@pytest.mark.parametrize("status", [429, 503])
def test_a_refusal_saying_later_waits_and_retries_the_same_transport(
    start_server: ServerFactory,
    new_tab: NewTab,
    settings: dict[str, str],
    pattern: re.Pattern[str],
    only: str,
    transport: str,
    status: int,
) -> None:
    server = start_server(**settings)
    page = new_tab().page
    front = Front(status, RETRY_AFTER_S, only)
    page.route(pattern, front.route)
    page.goto(f"{server.url}/healthz")
    page.evaluate(AUTO_CLIENT, f"room:later-{transport}")

    page.wait_for_function("() => window.c.state === 'live'", timeout=10_000)
    assert page.evaluate("() => window.c.transport") == transport
    assert refusals(page) == [{"code": status, "minDelay": RETRY_AFTER_S * 1000, "useful": False}]
    # No step down past the transport refused "later" (the WebSocket, turned off, is stepped past).
    seen = page.evaluate("() => window.transports")
    assert seen[-1] == transport and transport in seen, seen
    below = {"sse": {"longpoll", "shortpoll"}, "longpoll": {"shortpoll"}}[transport]
    assert not below & set(seen), seen
    assert len(front.seen) >= 2, front.seen
    assert front.seen[1] - front.seen[0] >= RETRY_AFTER_S


@pytest.mark.parametrize(
    ("settings", "pattern", "only", "transport"),
    [(NO_WS, STREAM, "", "sse"), (NO_WS_NO_SSE, EVENTS, "after=", "longpoll")],
    ids=["sse", "longpoll"],
)
def test_a_bare_429_waits_and_retries_the_same_transport(
    start_server: ServerFactory,
    new_tab: NewTab,
    settings: dict[str, str],
    pattern: re.Pattern[str],
    only: str,
    transport: str,
) -> None:
    """A 429 is "too many requests" with or without Retry-After: a budget, never a transport
    that cannot work here. Without Retry-After the client's own backoff is the wait."""
    server = start_server(**settings)
    page = new_tab().page
    front = Front(429, None, only)
    page.route(pattern, front.route)
    page.goto(f"{server.url}/healthz")
    page.evaluate(AUTO_CLIENT, f"room:bare-429-{transport}")

    page.wait_for_function("() => window.c.state === 'live'", timeout=10_000)
    assert page.evaluate("() => window.c.transport") == transport
    assert refusals(page) == [{"code": 429, "minDelay": 0, "useful": False}]
    seen = page.evaluate("() => window.transports")
    below = {"sse": {"longpoll", "shortpoll"}, "longpoll": {"shortpoll"}}[transport]
    assert seen[-1] == transport and not below & set(seen), seen
    assert len(front.seen) >= 2, front.seen


def test_a_refusal_without_retry_after_still_steps_down(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    server = start_server(**NO_WS)
    page = new_tab().page
    front = Front(503, None)
    page.route(STREAM, front.route)
    page.goto(f"{server.url}/healthz")
    page.evaluate(AUTO_CLIENT, "room:no-retry-after")

    page.wait_for_function("() => window.c.state === 'live'", timeout=10_000)
    assert page.evaluate("() => window.c.transport") == "longpoll"
    assert refusals(page) == [{"code": 503, "minDelay": 0, "useful": False}]
    assert len(front.seen) == 1, front.seen
