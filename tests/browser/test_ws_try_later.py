"""`auto` and a WebSocket closed "later" (1008 for abuse, 1013 try again later) before its welcome.

Either close asks for a wait, not for another transport: the browser client waits at least 5 s
and opens the WebSocket again, as the Python client does (tests/client/test_try_later_close.py),
instead of stepping down to SSE at once. fourcast never sends 1013 itself and closes for abuse
only after the welcome: the close before it comes from what stands in front of the server (a
proxy, a load balancer draining), here Playwright's WebSocket route, which answers the first
socket with the close and passes the next ones through to the server.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import WebSocketRoute

from tests.browser.conftest import NewTab
from tests.browser.pages import AUTO_CLIENT, drops_of
from tests.fixtures.server import ServerFactory

pytestmark = pytest.mark.browser

LATER_MS = 5000


class Front:
    """In front of the server's /ws: the first socket is closed with `code`, the next pass."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.opened: list[float] = []  # when each socket reached the route (monotonic s)
        self.closed_at: float | None = None

    def route(self, ws: WebSocketRoute) -> None:
        self.opened.append(time.monotonic())
        if len(self.opened) == 1:
            self.closed_at = time.monotonic()
            ws.close(code=self.code, reason="later")
        else:
            ws.connect_to_server()


@pytest.mark.parametrize("code", [1008, 1013])
def test_a_later_close_before_the_welcome_waits_and_retries_the_websocket(
    start_server: ServerFactory, new_tab: NewTab, code: int
) -> None:
    server = start_server()
    page = new_tab().page
    front = Front(code)
    page.route_web_socket("**/ws", front.route)
    page.goto(f"{server.url}/healthz")
    page.evaluate(AUTO_CLIENT, "room:later")

    page.wait_for_function("() => window.c.state === 'live'", timeout=3 * LATER_MS)
    drops = drops_of(page, "code", "minDelay", "useful")
    assert drops == [{"code": code, "minDelay": LATER_MS, "useful": False}], drops
    # The WebSocket again, after the wait asked for: never SSE.
    assert set(page.evaluate("() => window.transports")) == {"websocket"}
    assert page.evaluate("() => window.c.transport") == "websocket"
    assert len(front.opened) == 2, front.opened
    assert front.closed_at is not None
    assert front.opened[1] - front.closed_at >= LATER_MS / 1000
