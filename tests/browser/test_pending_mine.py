"""A person's own pending message on /chat, and events of theirs that confirm it.

The page shows a message at once as pending and confirms it when the server has it: by the
publish's answer, or by an event of the person's with the same text, whichever comes first.
(a) The same person in two tabs sends the same text while the first tab's publish is still in
flight, and that publish then fails: the other tab's message, which confirmed the pending copy,
must stay on the first tab's screen. (b) The room reloads its history (a reset) while a publish is in
flight: the pending message must stay in the list and end up shown once, as sent.

A publish is held in flight by routing it (SSE: publishes go over REST) until the test lets it go.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.conftest import NewTab
from tests.browser.pages import by_testid, messages, open_chat, send
from tests.fixtures.server import ServerProcess, Servers

pytestmark = pytest.mark.browser

RELOAD_HISTORY = "async () => (await import('/static/js/chat-messages.js')).loadHistory()"


@pytest.fixture(scope="module")
def pending_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    servers = Servers(tmp_path_factory.mktemp("pending-mine"))
    yield servers.start(publish_rate=1000, publish_burst=1000)
    servers.stop_all()


class HeldPublishes:
    """Holds this page's chat-message publishes until let go (other requests pass)."""

    def __init__(self, page: Page) -> None:
        self.held: list[Route] = []
        page.route("**/api/channels/*/events", self._route)

    def _route(self, route: Route) -> None:
        request = route.request
        if request.method == "POST" and "chat.message" in (request.post_data or ""):
            self.held.append(route)
        else:
            route.continue_()

    def wait_held(self, page: Page) -> Route:
        """The next held publish, once the page has sent it (Playwright dispatches the route
        while it waits: a bounded poll of that state, 10 s at most)."""
        for _ in range(200):
            if self.held:
                return self.held.pop(0)
            page.wait_for_timeout(50)
        raise AssertionError("the publish was never sent")


def mine(page: Page, text: str) -> Locator:
    return messages(page).filter(has=page.locator('[data-testid="message-text"]', has_text=text))


def test_a_send_that_fails_keeps_the_same_text_sent_from_another_tab(
    pending_server: ServerProcess, new_tab: NewTab
) -> None:
    first = new_tab()
    open_chat(first.page, pending_server.url, "twotabs", "Ann", transport="sse")
    second = first.context.new_page()  # the same person (the browser's guest), another tab
    second.goto(f"{pending_server.url}/chat/twotabs?transport=sse&share=off")
    expect(by_testid(second, "conn-state")).to_have_text("live")
    held = HeldPublishes(first.page)

    send(first.page, "same words")
    route = held.wait_held(first.page)
    send(second, "same words")
    expect(mine(second, "same words")).to_have_count(1)
    expect(mine(second, "same words").first).not_to_have_attribute("data-pending", "true")
    other = mine(second, "same words").first.get_attribute("data-id")
    assert other
    # The other tab's event has reached this one (where it may stand for the pending copy).
    expect(first.page.locator(f'[data-testid="message"][data-id="{other}"]')).to_have_count(1)
    route.fulfill(
        status=422,
        content_type="application/json",
        body='{"error":{"code":"invalid_input","message":"refused for the test"}}',
    )
    expect(by_testid(first.page, "send-error")).to_contain_text("Not sent")
    # The other tab's message stays: it was never this send's.
    expect(mine(first.page, "same words")).to_have_count(1)
    expect(mine(first.page, "same words").first).to_be_visible()


def test_a_message_sent_while_the_history_reloads_shows_once_as_sent(
    pending_server: ServerProcess, new_tab: NewTab
) -> None:
    tab = new_tab()
    open_chat(tab.page, pending_server.url, "reloading", "Bo", transport="sse")
    held = HeldPublishes(tab.page)

    send(tab.page, "during the reload")
    route = held.wait_held(tab.page)
    tab.page.evaluate(RELOAD_HISTORY)  # as a reset does, while the publish is in flight
    route.continue_()
    sent = mine(tab.page, "during the reload")
    expect(sent).to_have_count(1)
    expect(sent.first).to_be_visible()
    expect(sent.first).not_to_have_attribute("data-pending", "true")
    expect(sent.first).not_to_have_attribute("data-id", "")
    tab.page.evaluate(RELOAD_HISTORY)  # and the log has it: once, after another reload
    expect(sent).to_have_count(1)
