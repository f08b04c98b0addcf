"""Page helpers: what a person does on /chat and /compare, in Playwright terms."""

from __future__ import annotations

import re
import time

import httpx
from playwright.sync_api import Locator, Page, expect

TRANSPORTS = ("websocket", "sse", "longpoll", "shortpoll")


def by_testid(page: Page | Locator, name: str) -> Locator:
    return page.locator(f'[data-testid="{name}"]')


def open_chat(page: Page, base_url: str, room: str, name: str, transport: str = "auto") -> None:
    """Open /chat/<room> on `transport`, sign in as `name` and wait until the client is live."""
    page.goto(f"{base_url}/chat/{room}?transport={transport}")
    by_testid(page, "signin-name").fill(name)
    by_testid(page, "signin-submit").click()
    expect(by_testid(page, "current-user")).to_have_text(name)
    expect(by_testid(page, "conn-state")).to_have_text("live")
    if transport != "auto":
        expect(by_testid(page, "conn-transport")).to_have_text(transport)


def send(page: Page, text: str) -> None:
    box = by_testid(page, "message-input")
    box.fill(text)
    box.press("Enter")


def messages(page: Page) -> Locator:
    return by_testid(page, "message")


def presence_member(page: Page, name: str) -> Locator:
    return by_testid(page, "presence-member").filter(
        has=page.locator('[data-testid="presence-name"]', has_text=name)
    )


AUTO_CLIENT = """async (channel) => {
  await fetch('/api/session', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'patient' }) });
  const { FourcastClient } = await import('/static/js/fourcast.js');
  window.transports = [];
  window.drops = [];
  const c = new FourcastClient({ transport: 'auto', backoff: { base: 50, cap: 200 } });
  window.c = c;
  c.on('transport', ({ transport }) => window.transports.push(transport));
  c.on('drop', ({ transport, reason, code, minDelay, useful }) =>
    window.drops.push({ transport, reason, code, minDelay, useful }));
  c.subscribe(channel, () => {});
}"""
"""An `auto` client on `channel` (the cookie signs it in, a short backoff), recording its
transports in `window.transports` and its drops in `window.drops` (the tests of refusals that
say "later")."""


def drops_of(page: Page, *fields: str) -> list[dict[str, object]]:
    """The client's drops as `AUTO_CLIENT` recorded them, each with only `fields`."""
    return [{f: d.get(f) for f in fields} for d in page.evaluate("() => window.drops")]


def open_connections(url: str, transport: str = "") -> int:
    """The server's `fourcast_open_connections`, of one transport or (by default) of all."""
    label = re.escape(transport) if transport else '[^"]+'
    gauge = re.compile(rf'^fourcast_open_connections\{{transport="{label}"\}} ([0-9.e+]+)$', re.M)
    return int(sum(float(v) for v in gauge.findall(httpx.get(f"{url}/metrics").text)))


def expect_open_connections(url: str, count: int, transport: str = "", timeout: float = 10) -> None:
    """Poll the gauge until it reads `count` (the deadline only bounds a failure)."""
    deadline = time.monotonic() + timeout
    seen = open_connections(url, transport)
    while seen != count and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = open_connections(url, transport)
    assert seen == count, (
        f"fourcast_open_connections {transport or 'in all'} is {seen}, not {count}"
    )
