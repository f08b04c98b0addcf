"""`auto` and an EventSource refused while a fetch of the same stream is then accepted.

An EventSource refused (any status but 200) tells the page nothing of why, so the client asks for
the stream once more with fetch (static/js/fourcast-sse-fetch.js `askWhyRefused`). When that
fetch is accepted, the refusal was transient (a proxy's hiccup, a restart): the first such drop
in a row is "later" and SSE is tried again; a second in a row (a stream the EventSource can never
open here, while fetch can) steps down as any refusal does. Playwright's route stands in for whatever
refuses the EventSource's requests (resource type `eventsource`) and passes the fetches.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route

from tests.browser.conftest import NewTab
from tests.browser.pages import AUTO_CLIENT, drops_of
from tests.fixtures.server import ServerFactory

pytestmark = pytest.mark.browser

STREAM = re.compile(r"/api/channels/[^/?]+/stream")
NO_WS = {"ws_upgrades_enabled": "false"}


class Front:
    """Refuses the first `refuse` EventSource requests for a stream with a 502 (no Retry-After);
    passes every fetch of it, and the EventSource requests after those."""

    def __init__(self, refuse: int) -> None:
        self.refuse = refuse
        self.sources = 0  # EventSource requests seen
        self.fetches = 0

    def route(self, route: Route) -> None:
        if route.request.resource_type != "eventsource":
            self.fetches += 1
            route.continue_()
            return
        self.sources += 1
        if self.sources > self.refuse:
            route.continue_()
            return
        body = {"error": {"code": "bad_gateway", "message": "upstream hiccup"}}
        route.fulfill(status=502, json=body)


def sse_drops(page: Page) -> list[dict[str, object]]:
    return [d for d in drops_of(page, "transport", "reason", "useful") if d["transport"] == "sse"]


def test_an_eventsource_refused_once_then_accepted_retries_sse(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    server = start_server(**NO_WS)
    page = new_tab().page
    front = Front(refuse=1)
    page.route(STREAM, front.route)
    page.goto(f"{server.url}/healthz")
    page.evaluate(AUTO_CLIENT, "room:refused-once")

    page.wait_for_function("() => window.c.state === 'live'", timeout=10_000)
    assert page.evaluate("() => window.c.transport") == "sse"
    seen = page.evaluate("() => window.transports")
    assert not {"longpoll", "shortpoll"} & set(seen), seen
    drops = sse_drops(page)
    assert len(drops) == 1 and "refused" in str(drops[0]["reason"]), drops
    assert front.sources == 2, front.sources


def test_an_eventsource_refused_every_time_still_steps_down(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    server = start_server(**NO_WS)
    page = new_tab().page
    front = Front(refuse=1_000)
    page.route(STREAM, front.route)
    page.goto(f"{server.url}/healthz")
    page.evaluate(AUTO_CLIENT, "room:refused-always")

    page.wait_for_function("() => window.c.state === 'live'", timeout=10_000)
    assert page.evaluate("() => window.c.transport") == "longpoll"
    # One retry of SSE after the first refusal, then the step down: no loop.
    drops = sse_drops(page)
    assert len(drops) == 2 and all("refused" in str(d["reason"]) for d in drops), drops
    assert front.sources == 2, front.sources
