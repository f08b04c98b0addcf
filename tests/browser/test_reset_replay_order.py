"""Events replayed after a reset that reach /chat after its history reload finished.

A reset replays the channel from its oldest retained event, a page at a time, while the page
reloads the room's history (the newest 100 messages). A replayed message older than the
history's newest that the history does not have (older than its window) and that arrives once
the reload is done belongs at its place by server order, not at the bottom of the list.

The replay is cut in pages by a route: the reset poll asks for one event only (as a replay
longer than a poll's page would be cut), and the next poll (the rest of the replay) is held
until the history has been reloaded and shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import NewTab
from tests.browser.pages import by_testid
from tests.browser.test_recovery import publish
from tests.fixtures.server import ServerProcess, Servers

pytestmark = pytest.mark.browser

ROOM = "replayorder"
CHANNEL = f"room:{ROOM}"
BOGUS = "999999"  # a cursor the channel never issued: the server answers with a reset
COUNT = 105  # the history shows the newest 100: the 5 oldest are only in the replay
TEXTS = [f"m{n:03}" for n in range(COUNT)]

# The page's client resumes from a cursor the server cannot resume from.
FORCE_RESET = """async ({ channel, cursor }) => {
  const { page } = await import('/static/js/chat-page.js');
  page.client.subs.get(channel).cursor = cursor;
  page.client.dropConnection();
}"""


@pytest.fixture(scope="module")
def replay_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    servers = Servers(tmp_path_factory.mktemp("reset-replay"))
    yield servers.start(publish_rate=1000, publish_burst=1000)
    servers.stop_all()


class CutReplay:
    """The reset poll (after the bogus cursor) asks for one event; the poll after it is held."""

    def __init__(self, page: Page) -> None:
        self.reset_seen = False
        self.held: list[Route] = []
        page.route(f"**/api/channels/room%3A{ROOM}/events?*", self._route)

    def _route(self, route: Route) -> None:
        parts = urlsplit(route.request.url)
        query = parse_qs(parts.query)
        after = query.get("after", [None])[0]
        if after == BOGUS:
            self.reset_seen = True
            query["limit"] = ["1"]
            url = parts._replace(query=urlencode(query, doseq=True)).geturl()
            route.continue_(url=url)
        elif self.reset_seen and after is not None and not self.held:
            self.held.append(route)
        else:
            route.continue_()

    def wait_held(self, page: Page) -> Route:
        for _ in range(200):
            if self.held:
                return self.held[0]
            page.wait_for_timeout(50)
        raise AssertionError("the rest of the replay was never asked for")


def texts(page: Page) -> list[str]:
    return by_testid(page, "message-text").all_inner_texts()


def test_replayed_messages_older_than_the_reloaded_history_go_at_their_place(
    replay_server: ServerProcess, new_tab: NewTab
) -> None:
    publish(replay_server, CHANNEL, TEXTS)
    page = new_tab().page
    # One tab, its own client (not shared with other tabs): its cursor can be set here.
    page.goto(f"{replay_server.url}/chat/{ROOM}?transport=longpoll&share=off")
    by_testid(page, "signin-name").fill("Dee")
    by_testid(page, "signin-submit").click()
    expect(by_testid(page, "conn-state")).to_have_text("live")
    expect(by_testid(page, "conn-transport")).to_have_text("longpoll")
    expect(by_testid(page, "message-text")).to_have_count(100)
    assert texts(page) == TEXTS[5:]

    cut = CutReplay(page)
    page.evaluate(FORCE_RESET, {"channel": CHANNEL, "cursor": BOGUS})
    held = cut.wait_held(page)
    # The reset's page (the oldest event) came during the reload; the reload then shows the
    # newest 100 again.
    page.wait_for_function(
        """() => { const t = [...document.querySelectorAll('[data-testid="message-text"]')];
          return t.length === 100 && t[0].textContent === 'm005'; }""",
        timeout=10_000,
    )
    held.continue_()  # the rest of the replay: m001..m104, m001..m004 older than the history
    expect(by_testid(page, "message-text").filter(has_text="m001")).to_have_count(1)
    shown = texts(page)
    assert shown == sorted(shown), shown
    assert shown == TEXTS[1:], shown
