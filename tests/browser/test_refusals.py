"""The browser client when the server refuses a connection whose status the browser hides.

An `EventSource` refused (any status but 200) and a WebSocket handshake refused (close 1006) tell
the page nothing of why. The client finds out, so that it reacts as on the other transports:

- An SSE client signed in by its cookie alone, whose person signs out, reports the 401 and waits
  for a new token instead of reopening the stream again and again.
- An SSE stream refused with `429` waits for its `Retry-After`.
- A transport chosen explicitly that the server has turned off (`transport_disabled`) is not
  retried: the client goes offline and says why, as the Python client stops
  (`auto` steps down instead: test_fallback.py).
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page

from tests.browser.conftest import NewTab
from tests.fixtures.server import ServerFactory, ServerProcess

pytestmark = pytest.mark.browser

STREAM = re.compile(r"/api/channels/[^/?]+/stream")

# This context's cookie signs in `name`; the person's id.
COOKIE_SIGN_IN = """async (name) => {
  const res = await fetch('/api/session', { method: 'POST',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
  return (await res.json()).user.id;
}"""

# A client of its own (no token: the cookie signs it in) on `transport`, live on `channel`.
CLIENT = """async ({ channel, transport }) => {
  const { FourcastClient } = await import('/static/js/fourcast.js');
  window.errors = [];
  window.drops = [];
  const c = new FourcastClient({ transport, backoff: { base: 50, cap: 200 } });
  window.c = c;
  c.on('error', ({ error }) => window.errors.push({ status: error.status, code: error.code }));
  c.on('drop', ({ code, minDelay, auth }) => window.drops.push({ code, minDelay, auth }));
  c.subscribe(channel, () => {});
  await new Promise((ok) => c.on('state', (s) => s === 'live' && ok()));
}"""


def stream_requests(page: Page) -> list[str]:
    """The stream URLs the page asks for, from now on."""
    seen: list[str] = []
    page.on("request", lambda request: STREAM.search(request.url) and seen.append(request.url))
    return seen


def test_an_sse_client_signed_in_by_cookie_reports_401_once_signed_out(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    server = start_server()
    page = new_tab().page
    page.goto(f"{server.url}/healthz")
    user = page.evaluate(COOKIE_SIGN_IN, "cora")
    page.evaluate(CLIENT, {"channel": "room:cookie", "transport": "sse"})
    streams = stream_requests(page)

    revoked = httpx.delete(
        f"{server.url}/api/people/{user}/sessions", headers=server.service_headers
    )
    assert revoked.status_code == 204, revoked.text
    # The stream ends; reopened, it is refused (the cookie now reads as no one): a 401.
    page.wait_for_function("() => window.errors.some((e) => e.status === 401)")
    assert page.evaluate("() => window.c.state") == "offline"
    assert "new token" in page.evaluate("() => window.c.reason")
    assert page.evaluate("() => window.drops.at(-1)") == {"code": 401, "minDelay": 0, "auth": True}
    # Reopened once (refused), asked once more why: no retry after that.
    assert len(streams) == 2, streams


def test_an_sse_stream_refused_with_429_waits_for_its_retry_after(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    server: ServerProcess = start_server(max_connections_per_user=1)
    page = new_tab().page
    page.goto(f"{server.url}/healthz")
    page.evaluate(COOKIE_SIGN_IN, "rita")
    page.evaluate(CLIENT, {"channel": "room:first", "transport": "sse"})
    # A second stream of the same person is over the cap: 429 with Retry-After.
    page.evaluate("() => window.c.subscribe('room:second', () => {})")
    page.wait_for_function("() => window.drops.length > 0")
    drop = page.evaluate("() => window.drops[0]")
    assert drop["code"] == 429, drop
    assert drop["minDelay"] >= 1000, drop
    assert not drop.get("auth")


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_a_transport_chosen_explicitly_and_turned_off_is_not_retried(
    start_server: ServerFactory, new_tab: NewTab, transport: str
) -> None:
    server = start_server(ws_upgrades_enabled="false", sse_enabled="false")
    page = new_tab().page
    page.goto(f"{server.url}/healthz")
    page.evaluate(COOKIE_SIGN_IN, "otto")
    page.evaluate(
        """async (transport) => {
          const { FourcastClient } = await import('/static/js/fourcast.js');
          window.errors = [];
          window.c = new FourcastClient({ transport, backoff: { base: 50, cap: 200 } });
          window.c.on('error', ({ error }) => window.errors.push({ status: error.status, code: error.code }));
          window.c.subscribe('room:off', () => {});
        }""",
        transport,
    )
    page.wait_for_function("() => window.errors.length > 0")
    assert page.evaluate("() => window.errors") == [{"status": 403, "code": "transport_disabled"}]
    assert page.evaluate("() => window.c.state") == "offline"
    reason = page.evaluate("() => window.c.reason")
    assert f"{transport} is turned off on this server" in reason, reason
    assert "not reconnecting" in reason, reason

    # Another transport, chosen on the page, works at once.
    page.evaluate("() => window.c.setTransport('longpoll')")
    page.wait_for_function("() => window.c.state === 'live'")
