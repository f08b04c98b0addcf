"""After a reset on a channel with nothing retained, the client resumes from where the reset put it.

A cursor the server cannot resume from (here one greater than any the channel has issued) gets a
reset, then the retained events: none on an empty channel. The reset tells the cursor it starts
from (docs/protocol.md: a long poll's `next`, the WebSocket subscribe's ack `next`, the SSE reset
frame's `id:`). A client that kept its old cursor would be told `reset` again on each reconnect.
"""

from __future__ import annotations

import itertools

import pytest

from tests.browser.conftest import NewTab
from tests.browser.test_recovery import publish
from tests.fixtures.server import ServerFactory

pytestmark = pytest.mark.browser

_channels = itertools.count()

# An anonymous client on `transport` resuming `channel` from a cursor the server never issued.
CLIENT = """async ({ channel, transport }) => {
  const { FourcastClient } = await import('/static/js/fourcast.js');
  window.got = [];
  window.resets = 0;
  window.drops = 0;
  const c = new FourcastClient({ transport, backoff: { base: 50, cap: 200 } });
  window.c = c;
  c.on('reset', () => { window.resets += 1; });
  c.on('drop', () => { window.drops += 1; });
  c.subscribe(channel, (e) => window.got.push(e.data.text), { after: '999999' });
}"""


@pytest.mark.parametrize(
    ("launch", "transport"),
    [
        ("python -m app", "sse"),
        ("uvicorn", "sse"),
        ("python -m app", "websocket"),
        ("uvicorn", "websocket"),
        ("python -m app", "longpoll"),
    ],
)
def test_a_reset_on_an_empty_channel_is_not_told_again_after_a_reconnect(
    start_server: ServerFactory, new_tab: NewTab, launch: str, transport: str
) -> None:
    server = start_server(launch=launch)
    channel = f"public:empty{next(_channels)}"
    page = new_tab().page
    page.goto(f"{server.url}/healthz")
    page.evaluate(CLIENT, {"channel": channel, "transport": transport})
    page.wait_for_function("() => window.resets === 1 && window.c.state === 'live'")
    page.wait_for_function(
        "(channel) => window.c.cursor(channel) !== '999999'", arg=channel, timeout=10_000
    )

    page.evaluate("() => window.c.dropConnection()")
    page.wait_for_function("() => window.drops === 1 && window.c.state === 'live'")
    # An event published now comes after anything the resume itself sends (a reset first).
    publish(server, channel, ["after"])
    page.wait_for_function("() => window.got.includes('after')")

    assert page.evaluate("() => window.resets") == 1
    assert page.evaluate("() => window.got") == ["after"]
