"""An SSE stream on a connection the network dropped without a word (half-open: no FIN, no RST)
stays open in the browser, and the server's keepalive comments, which would show the silence,
never reach the page. The client checks a stream silent for `sseStaleAfter` with a one-event
read: events it has not delivered mean the stream is stale, and it resumes by cursor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.browser.conftest import NewTab
from tests.browser.test_recovery import publish
from tests.fixtures.faultproxy import FaultProxy, fault_proxy
from tests.fixtures.ports import free_port
from tests.fixtures.server import ServerFactory, ServerProcess

pytestmark = pytest.mark.browser

CHANNEL = "public:stale"
RECOVERY_MS = 30_000
CHECK = re.compile(r"/api/channels/public%3Astale/events\?after=")

# An anonymous client (public: channels need no sign-in) reading CHANNEL over SSE.
CLIENT = """async ({ channel }) => {
  const { FourcastClient } = await import('/static/js/fourcast.js');
  window.got = [];
  window.drops = [];
  const c = new FourcastClient({
    transport: 'sse', sseStaleAfter: 1000, probeTimeout: 1000, backoff: { base: 50, cap: 200 } });
  window.c = c;
  c.on('drop', ({ reason }) => window.drops.push(reason));
  c.subscribe(channel, (e) => window.got.push(e.data.text));
  await new Promise((ok) => c.on('state', (s) => s === 'live' && ok()));
}"""


@pytest.fixture
def proxied(start_server: ServerFactory) -> Iterator[tuple[ServerProcess, FaultProxy]]:
    """A server, and a fault proxy in front of it that the browser goes through."""
    port = free_port()
    with fault_proxy("127.0.0.1", port) as proxy:
        yield start_server(port=port), proxy


def test_a_stale_sse_stream_is_noticed_and_resumed(
    proxied: tuple[ServerProcess, FaultProxy], new_tab: NewTab
) -> None:
    server, proxy = proxied
    page = new_tab().page
    page.goto(f"http://127.0.0.1:{proxy.port}/healthz")
    page.evaluate(CLIENT, {"channel": CHANNEL})
    publish(server, CHANNEL, ["before"])
    page.wait_for_function("() => window.got.includes('before')")

    # A quiet channel is checked, and a check that finds nothing missed changes nothing.
    with page.expect_request(CHECK):
        pass
    with page.expect_request(CHECK):
        pass
    assert page.evaluate("() => window.drops") == []

    assert proxy.sever() >= 1  # the stream's connection, and the idle ones, are now half-open
    publish(server, CHANNEL, ["after 1", "after 2"])
    # Each request the browser sends on an idle half-open connection of its pool hangs until
    # the client gives up on it (probeTimeout): a few such seconds before the resume.
    page.wait_for_function("() => window.got.includes('after 2')", timeout=RECOVERY_MS)
    assert page.evaluate("() => window.got") == ["before", "after 1", "after 2"]
    drops = page.evaluate("() => window.drops")
    assert drops[0].startswith(f"sse stream for {CHANNEL} went stale"), drops
    assert page.evaluate("() => window.c.state") == "live"
