"""Shared by default: more tabs on SSE than Chromium's six HTTP/1.1 connections a host, still one
stream, and a REST publish from a tab completes.

Each tab holding its own EventSource (`share: false`) would hold one of those six connections
per channel, and a tab's REST publish then waits for a free one (docs/browser-client.md, "Many
tabs on SSE"). Shared, the SharedWorker holds the one stream and every tab's publish goes out
beside it.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import NewTab
from tests.browser.pages import expect_open_connections
from tests.fixtures.server import ServerFactory

pytestmark = pytest.mark.browser

TABS = 7  # past Chromium's six connections a host
CHANNEL = "room:many-tabs"
# A tab's client (the default: shared), signed in by the cookie, recording what it receives.
CLIENT = """async (channel) => {
  await fetch('/api/session', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'tabby' }) });
  const { createClient } = await import('/static/js/fourcast.js');
  const c = createClient({ transport: 'sse', identity: 'tabby' });
  window.c = c;
  window.got = [];
  c.subscribe(channel, (e) => e.type === 'note' && window.got.push(e.data.n));
  await new Promise((ok) => {
    if (c.state === 'live') ok();
    c.on('state', (s) => s === 'live' && ok());
  });
}"""
# Started, not awaited: a publish that never completes fails the wait below, not a hung evaluate.
PUBLISH = """([channel, n]) => {
  window.published = null;
  window.c.publish(channel, 'note', { n }).then(
    () => { window.published = 'done'; },
    (e) => { window.published = `error: ${e.message}`; });
}"""


def test_more_tabs_than_connections_a_host_share_one_stream_and_publish(
    start_server: ServerFactory, new_tab: NewTab
) -> None:
    server = start_server(publish_address_rate=1000, publish_address_burst=1000)
    tab = new_tab()
    pages: list[Page] = [tab.page]
    pages += [tab.context.new_page() for _ in range(TABS - 1)]
    for page in pages:
        page.goto(f"{server.url}/healthz")
        page.evaluate(CLIENT, CHANNEL)
    expect_open_connections(server.url, 1, "sse")

    for n, page in enumerate(pages, start=1):
        page.evaluate(PUBLISH, [CHANNEL, n])
        page.wait_for_function("() => window.published !== null")
        assert page.evaluate("() => window.published") == "done"
    for page in pages:
        page.wait_for_function("(n) => window.got.length === n", arg=TABS)
        assert page.evaluate("() => window.got") == list(range(1, TABS + 1))
    expect_open_connections(server.url, 1, "sse")
    assert tab.console_errors(allow=("favicon.ico",)) == []  # /healthz is no page with an icon
