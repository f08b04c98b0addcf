"""The browser client after the server says "not now", "not you" or "not all at once".

- A WebSocket `subscribe` refused for now (`rate_limited` with `retry_after`) is sent again once
  the budget has refilled, so the channel is read; one unsubscribed meanwhile is not.
- An SSE client whose person signed out reports the 401 (its ticket request is refused) and waits
  for a new token instead of asking for tickets again and again.
- A tab of a shared connection whose catch-up read fails (503) or comes back cut short
  (`truncated`) reads the whole gap, in order, before the events the hub relayed meanwhile.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, WebSocket

from tests.browser.conftest import NewTab
from tests.fixtures.server import ServerFactory, ServerProcess

pytestmark = pytest.mark.browser

# A person's token (a guest), without touching this context's cookie.
SIGN_IN = """async (name) => {
  const res = await fetch('/api/session', { method: 'POST', credentials: 'omit',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
  return (await res.json()).token;
}"""


def publish(server: ServerProcess, channel: str, texts: list[str], pad: int = 0) -> list[str]:
    """Publish as the service; the events' ids."""
    ids = []
    with httpx.Client(base_url=server.url, headers=server.service_headers) as api:
        for text in texts:
            data = {"text": text, "pad": "x" * pad} if pad else {"text": text}
            response = api.post(
                f"/api/channels/{channel}/events", json={"type": "chat.message", "data": data}
            )
            assert response.status_code == 201, response.text
            ids.append(str(response.json()["id"]))
    return ids


# --- WebSocket: a subscribe refused for now --------------------------------------------------

# Client A's subscribe spends the person's whole subscribe budget (burst 1); A reading an event
# proves its subscribe was acked. Then client B, the same person, subscribes and is refused.
TWO_CLIENTS = """async ({ token, channel }) => {
  const { FourcastClient } = await import('/static/js/fourcast.js');
  const text = (got) => (e) => e.type === 'chat.message' && got.push(e.data.text);
  window.gotA = [];
  window.a = new FourcastClient({ token, transport: 'websocket' });
  window.a.subscribe(channel, text(window.gotA));
  await new Promise((ok) => window.a.on('state', (s) => s === 'live' && ok()));
  await fetch(`/api/channels/${channel}/events`, { method: 'POST', credentials: 'omit',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ type: 'chat.message', data: { text: 'one' } }) });
  while (!window.gotA.includes('one')) await new Promise((ok) => setTimeout(ok, 10));

  window.gotB = [];
  window.errorsB = [];
  window.b = new FourcastClient({ token, transport: 'websocket', backoff: { base: 250, cap: 1000 } });
  const refused = new Promise((ok) => window.b.on('error', ({ error }) => {
    window.errorsB.push({ code: error.code, retryAfter: error.retryAfter });
    ok();
  }));
  window.b.subscribe(channel, text(window.gotB));
  await refused;
  return window.errorsB;
}"""


def test_a_rate_limited_subscribe_is_sent_again_once_the_budget_refills(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    # A token back every 5 s: B's subscribe, right after A's, is refused however slow the
    # machine, and B's retry (after retry_after) is taken.
    server = start_server(subscribe_burst=1, subscribe_rate=0.2)
    page = new_tab().page
    channel = "room:refill"
    sent: list[list[dict[str, Any]]] = []  # per socket, in the order they opened: A's, then B's
    received: list[list[dict[str, Any]]] = []

    def on_socket(ws: WebSocket) -> None:
        out: list[dict[str, Any]] = []
        into: list[dict[str, Any]] = []
        sent.append(out)
        received.append(into)
        ws.on("framesent", lambda payload: out.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: into.append(json.loads(payload)))

    page.on("websocket", on_socket)
    page.goto(f"{server.url}/healthz")
    token = page.evaluate(SIGN_IN, "rita")
    errors = page.evaluate(TWO_CLIENTS, {"token": token, "channel": channel})
    assert [e["code"] for e in errors] == ["rate_limited"], errors
    assert 0 < errors[0]["retryAfter"] <= 5000, errors  # the op's retry_after, in ms

    # Published after the refusal: B reads it only if it subscribes again.
    publish(server, channel, ["two"])
    page.wait_for_function("() => window.gotB.includes('two')")
    assert page.evaluate("() => window.gotA") == ["one", "two"]
    assert page.evaluate("() => window.gotB") == ["two"]
    assert page.evaluate("() => window.b.state") == "live"

    # B's socket: a subscribe refused, then one more, accepted (B reads `two`): the retry waited
    # for the refill, since an early one would have been refused again.
    assert len(sent) == 2, sent
    subscribes = [f for f in sent[1] if f.get("op") == "subscribe"]
    assert [f["channel"] for f in subscribes] == [channel, channel], sent[1]
    answer = next(f for f in received[1] if f.get("ref") == subscribes[0]["ref"])
    assert (answer["op"], answer.get("code")) == ("error", "rate_limited"), answer
    assert page.evaluate("() => window.errorsB.length") == 1


# One client: W spends the budget; X and Y are refused; X is unsubscribed in its error handler.
UNSUBSCRIBED_MEANWHILE = """async ({ token }) => {
  const { FourcastClient } = await import('/static/js/fourcast.js');
  window.sent = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    window.sent.push(JSON.parse(data));
    return send.call(this, data);
  };
  const c = new FourcastClient({ token, transport: 'websocket', backoff: { base: 100, cap: 100 } });
  window.c = c;
  const refused = new Set();
  const offs = {};
  const both = new Promise((ok) => c.on('error', ({ channel, error }) => {
    if (error.code !== 'rate_limited') return;
    refused.add(channel);
    if (channel === 'room:x') offs['room:x']();  // not wanted any more
    if (refused.has('room:x') && refused.has('room:y')) ok();
  }));
  c.subscribe('room:w', () => {});
  await new Promise((ok) => c.on('state', (s) => s === 'live' && ok()));
  offs['room:x'] = c.subscribe('room:x', () => {});
  c.subscribe('room:y', () => {});
  await both;
}"""


def test_a_refused_subscribe_unsubscribed_meanwhile_is_not_sent_again(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    server = start_server(subscribe_burst=1, subscribe_rate=0.2)  # a token back every 5 s
    page = new_tab().page
    page.clock.install()  # the retry timers run when the test says
    page.goto(f"{server.url}/healthz")
    token = page.evaluate(SIGN_IN, "umberto")
    page.evaluate(UNSUBSCRIBED_MEANWHILE, {"token": token})

    def subscribes(channel: str) -> int:
        frames = page.evaluate("() => window.sent")
        return sum(1 for f in frames if f.get("op") == "subscribe" and f["channel"] == channel)

    assert (subscribes("room:x"), subscribes("room:y")) == (1, 1)
    # retry_after is at most 5 s, the backoff under 0.1 s: 8 s on, every retry is due (and the
    # socket's silence check, at 60 s, is not).
    page.clock.run_for(8_000)
    assert subscribes("room:y") >= 2  # still wanted: asked again
    assert subscribes("room:x") == 1  # unsubscribed while waiting: never again


# --- SSE: signed out ----------------------------------------------------------------------------

# An SSE-only client of its own, counting what POST /api/tickets answers.
SSE_CLIENT = """async ({ token, channel }) => {
  const { FourcastClient } = await import('/static/js/fourcast.js');
  window.tickets = [];
  const origFetch = window.fetch;
  window.fetch = async (url, init) => {
    const res = await origFetch(url, init);
    if (String(url).includes('/api/tickets')) window.tickets.push(res.status);
    return res;
  };
  window.errors = [];
  window.got = [];
  const c = new FourcastClient({ token, transport: 'sse', backoff: { base: 20, cap: 100 } });
  window.c = c;
  c.on('error', ({ error }) => window.errors.push({ status: error.status, code: error.code }));
  c.subscribe(channel, (e) => e.type === 'chat.message' && window.got.push(e.data.text));
  await new Promise((ok) => c.on('state', (s) => s === 'live' && ok()));
}"""


def test_an_sse_client_signed_out_reports_401_and_waits_for_a_new_token(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    server = start_server()
    page = new_tab().page
    channel = "room:signout"
    page.goto(f"{server.url}/healthz")
    token = page.evaluate(SIGN_IN, "sam")
    page.evaluate(SSE_CLIENT, {"token": token, "channel": channel})
    assert page.evaluate("() => window.tickets") == [201]

    signed_out = httpx.delete(
        f"{server.url}/api/session", headers={"Authorization": f"Bearer {token}"}
    )
    assert signed_out.status_code in (200, 204), signed_out.text
    page.wait_for_function("() => window.errors.some((e) => e.status === 401)")
    assert page.evaluate("() => window.errors") == [{"status": 401, "code": "unauthorized"}]
    # It waits for a new token: no reconnect, so no more ticket requests.
    assert page.evaluate("() => window.c.state") == "offline"
    assert "new token" in page.evaluate("() => window.c.reason")
    assert page.evaluate("() => window.tickets") == [201, 401]

    # A new token: it connects again at once, resumes, and reads what was published meanwhile.
    publish(server, channel, ["while signed out"])
    fresh = page.evaluate(SIGN_IN, "sam again")
    page.evaluate("(token) => window.c.setToken(token)", fresh)
    page.wait_for_function("() => window.got.includes('while signed out')")
    assert page.evaluate("() => window.c.state") == "live"
    assert page.evaluate("() => window.tickets") == [201, 401, 201]
    assert len(page.evaluate("() => window.errors")) == 1


# --- Shared tabs: the catch-up read ------------------------------------------------------------

CATCH_UP = re.compile(r"/api/channels/[^/?]+/events\?after=")

# A tab of a shared connection (a SharedWorker holds it) reading `channel` after `after`.
SHARED_TAB = """async ({ channel, after }) => {
  const { createClient } = await import('/static/js/fourcast.js');
  window.got = [];
  window.errors = [];
  const client = createClient({ transport: 'websocket' });
  window.client = client;
  client.on('error', ({ error }) => window.errors.push(error.status));
  client.subscribe(channel, (e) => window.got.push(e.data.text), { after });
  return client.constructor.name;
}"""


def open_shared_tab(page: Page, server: ServerProcess, channel: str, after: str) -> list[Route]:
    """Open a tab reading `channel` after `after`; the first catch-up read is held (returned),
    the others pass. Returns once a relayed event waits in the tab's buffer behind it."""
    held: list[Route] = []

    def catch_up(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route(CATCH_UP, catch_up)
    page.goto(f"{server.url}/healthz")
    with page.expect_request(CATCH_UP):
        assert page.evaluate(SHARED_TAB, {"channel": channel, "after": after}) == "SharedClient"
    publish(server, channel, ["live"])  # relayed by the hub while the catch-up is held
    page.wait_for_function("(ch) => window.client.subs.get(ch).buffer?.length === 1", arg=channel)
    assert len(held) == 1
    return held


def test_a_failed_catch_up_is_retried_before_the_relayed_events(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    server = start_server()
    page = new_tab().page
    channel = "public:catch-up-503"
    (start,) = publish(server, channel, ["before"])
    publish(server, channel, ["gap 1", "gap 2", "gap 3"])
    requests: list[float] = []
    page.on(
        "request", lambda r: requests.append(time.monotonic()) if CATCH_UP.search(r.url) else None
    )
    held = open_shared_tab(page, server, channel, start)

    refused_at = time.monotonic()
    held[0].fulfill(
        status=503,
        headers={"Retry-After": "1"},
        json={"error": {"code": "unavailable", "message": "event log unavailable"}},
    )
    page.wait_for_function("() => window.got.includes('live')")
    assert page.evaluate("() => window.got") == ["gap 1", "gap 2", "gap 3", "live"]
    assert page.evaluate("() => window.errors") == [503]
    assert len(requests) == 2, requests
    assert requests[1] - refused_at >= 1.0  # Retry-After honoured


def test_a_truncated_catch_up_page_is_followed_by_the_rest_of_the_gap(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    server = start_server(poll_max_bytes=64 * 1024)
    page = new_tab().page
    channel = "public:catch-up-truncated"
    (start,) = publish(server, channel, ["before"])
    gap = [f"gap {n}" for n in range(1, 6)]
    publish(server, channel, gap, pad=25_000)  # two to a 64 KiB page
    first = httpx.get(f"{server.url}/api/channels/{channel}/events?after={start}&limit=500").json()
    assert first["truncated"] is True and len(first["events"]) == 2, first["events"]
    held = open_shared_tab(page, server, channel, start)

    held[0].continue_()
    page.wait_for_function("() => window.got.includes('live')")
    assert page.evaluate("() => window.got") == [*gap, "live"]
    assert page.evaluate("() => window.errors") == []
