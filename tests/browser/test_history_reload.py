"""Live messages that arrive on /chat while its history reloads (a reset reloads it).

The page reads the room's history, then replaces the list with it. Someone else's message that
arrives live while that read is in flight, and that the history does not have (it was kept after
the read), must stay in the list, once, after the history; one the history has shows once.

The history request is held by routing it: its answer is fetched at once (before the messages
below are published) and handed to the page only after their live events have arrived.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import NewTab
from tests.browser.pages import by_testid, open_chat
from tests.browser.test_recovery import publish
from tests.fixtures.server import ServerProcess, Servers

pytestmark = pytest.mark.browser

ROOM = "reloadlive"
CHANNEL = f"room:{ROOM}"
# As a reset does: the page's own reload, not awaited here (its request is held).
RELOAD_HISTORY = """() => { import('/static/js/chat-messages.js').then((m) => {
  window.reloaded = false;
  m.loadHistory().then(() => { window.reloaded = true; });
}); }"""


@pytest.fixture(scope="module")
def reload_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    servers = Servers(tmp_path_factory.mktemp("history-reload"))
    yield servers.start(publish_rate=1000, publish_burst=1000)
    servers.stop_all()


class HeldHistory:
    """Holds this page's history requests until let go (other requests pass)."""

    def __init__(self, page: Page) -> None:
        self.held: list[Route] = []
        page.route("**/api/rooms/*/messages*", self._route)

    def _route(self, route: Route) -> None:
        self.held.append(route)

    def wait_held(self, page: Page) -> Route:
        """The next held request, once the page has sent it (Playwright dispatches the route
        while it waits: a bounded poll of that state, 10 s at most)."""
        for _ in range(200):
            if self.held:
                return self.held.pop(0)
            page.wait_for_timeout(50)
        raise AssertionError("the history was never requested")


def texts(page: Page) -> list[str]:
    return by_testid(page, "message-text").all_inner_texts()


def shown(page: Page, text: str) -> None:
    expect(by_testid(page, "message-text").filter(has_text=text)).to_have_count(1)


def test_a_live_message_newer_than_the_reloaded_history_stays_once(
    reload_server: ServerProcess, new_tab: NewTab
) -> None:
    page = new_tab().page
    open_chat(page, reload_server.url, ROOM, "Cy", transport="sse")
    publish(reload_server, CHANNEL, ["before"])
    shown(page, "before")

    held = HeldHistory(page)
    page.evaluate(RELOAD_HISTORY)
    route = held.wait_held(page)
    publish(reload_server, CHANNEL, ["read by the history"])
    shown(page, "read by the history")
    history = route.fetch()  # the history as read now: without the messages published next
    assert "read by the history" in history.text()
    publish(reload_server, CHANNEL, ["kept after the read", "and another"])
    shown(page, "and another")  # both have arrived live, in order
    route.fulfill(response=history)
    page.wait_for_function("() => window.reloaded === true")

    assert texts(page) == ["before", "read by the history", "kept after the read", "and another"]
    # A later reload (the log has them all now) shows the same list.
    page.unroute("**/api/rooms/*/messages*")
    page.evaluate(RELOAD_HISTORY)
    page.wait_for_function("() => window.reloaded === true")
    assert texts(page) == ["before", "read by the history", "kept after the read", "and another"]
