"""A WebSocket closed with 1008 that is not an answer to an `auth` op.

docs/protocol.md gives 1008 two causes: a failed `auth` op, and repeated abuse (more than 20 errors
in 10 s, going over a budget included). Only the first means the credentials are bad. A page that
publishes a burst over its budget is closed for abuse: its client backs off and reconnects, as the
same person, without reporting a 401 (on which the chat page would forget the person's session).
`auto` keeps the WebSocket (the close asked for a wait, not another transport; a close "later"
that comes before the welcome, from a proxy: test_ws_try_later.py). A failed `auth` op still stops
the client until a new token is set.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import NewTab
from tests.fixtures.server import ServerFactory

pytestmark = pytest.mark.browser

LAUNCHES = ["python -m app", "uvicorn"]

COOKIE_SIGN_IN = """async (name) => {
  const res = await fetch('/api/session', { method: 'POST',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
  return (await res.json()).user.id;
}"""

# A WebSocket client (the cookie signs it in, unless given a token) live on `channel`, recording
# its errors, drops and welcomes.
CLIENT = """async ({ channel, token, transport = 'websocket' }) => {
  const { FourcastClient } = await import('/static/js/fourcast.js');
  window.errors = [];
  window.drops = [];
  const c = new FourcastClient({ transport, token, backoff: { base: 50, cap: 200 } });
  window.c = c;
  c.on('error', ({ error }) => window.errors.push({ status: error.status, code: error.code }));
  c.on('drop', ({ code, minDelay, auth }) => window.drops.push({ code, minDelay, auth }));
  c.subscribe(channel, () => {});
  if (token) return;
  await new Promise((ok) => c.on('state', (s) => s === 'live' && ok()));
}"""

# Publish `count` chat messages at once over the socket: past the person's budget (a burst of 20),
# each refused one is an error op, and the 21st error within 10 s closes the socket with 1008.
BURST = """async ({ channel, count }) => {
  const outcomes = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => window.c.publish(channel, 'chat.message', { text: `m${i}` })));
  return outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : o.reason.code));
}"""


@pytest.mark.parametrize(
    ("launch", "transport"),
    [("python -m app", "websocket"), ("uvicorn", "websocket"), ("python -m app", "auto")],
)
def test_an_abuse_close_backs_off_and_reconnects_as_the_same_person(
    start_server: ServerFactory, new_tab: NewTab, launch: str, transport: str
) -> None:
    server = start_server(launch=launch, publish_rate=1)
    page = new_tab().page
    page.goto(f"{server.url}/healthz")
    user = page.evaluate(COOKIE_SIGN_IN, "abby")
    page.evaluate(CLIENT, {"channel": "room:burst", "token": None, "transport": transport})
    welcomed = page.evaluate("() => window.c.conn.welcome.user.id")
    assert welcomed == user

    outcomes = page.evaluate(BURST, {"channel": "room:burst", "count": 45})
    assert "rate_limited" in outcomes, outcomes

    page.wait_for_function("() => window.drops.length > 0")
    drop = page.evaluate("() => window.drops[0]")
    assert drop["code"] == 1008, drop
    assert not drop.get("auth"), drop
    assert drop["minDelay"] >= 1000, drop
    # Back, as the same person: the session was kept.
    page.wait_for_function(
        "() => window.c.state === 'live' && window.c.conn.welcome", timeout=30_000
    )
    assert page.evaluate("() => window.c.conn.welcome.user.id") == user
    assert page.evaluate("() => window.errors.filter((e) => e.status === 401)") == []
    assert page.evaluate("() => window.c.transport") == "websocket"  # `auto` too: no step down


@pytest.mark.parametrize("launch", LAUNCHES)
def test_a_failed_auth_op_stops_until_a_new_token(
    start_server: ServerFactory, new_tab: NewTab, launch: str
) -> None:
    server = start_server(launch=launch)
    page = new_tab().page
    page.goto(f"{server.url}/healthz")
    # Not a valid subprotocol token (a space): the client sends it in an `auth` op instead.
    page.evaluate(CLIENT, {"channel": "public:open", "token": "not a token"})

    page.wait_for_function("() => window.drops.length > 0 && window.c.state === 'offline'")
    drop = page.evaluate("() => window.drops[0]")
    assert (drop["code"], drop["auth"]) == (1008, True), drop
    assert {"status": 401, "code": "unauthorized"} in page.evaluate("() => window.errors")
    assert "new token" in page.evaluate("() => window.c.reason")
