"""Two people chat in one room, each on a transport of their own: every ordered pair of the four.

Messages go both ways, each sees the other in the presence list (with the other's transport),
and each sees the other typing. One server for the module, with a short presence lease so that a
poller's lease (and a reader's history reads) lapse quickly; a room of its own per pair.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import NewTab
from tests.browser.pages import TRANSPORTS, by_testid, messages, open_chat, presence_member
from tests.fixtures.server import ServerProcess, Servers

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    servers = Servers(tmp_path_factory.mktemp("chat-pairs"))
    yield servers.start(
        presence_lease=2,
        publish_rate=1000,
        publish_burst=1000,
        publish_address_rate=1000,
        publish_address_burst=1000,
    )
    servers.stop_all()


@pytest.mark.parametrize(
    ("first", "second"),
    list(itertools.product(TRANSPORTS, repeat=2)),
    ids=lambda t: t,
)
def test_two_people_chat(
    chat_server: ServerProcess, new_tab: NewTab, first: str, second: str
) -> None:
    room = f"pair-{first}-{second}"
    alice, bob = new_tab(), new_tab()
    open_chat(alice.page, chat_server.url, room, "alice", first)
    open_chat(bob.page, chat_server.url, room, "bob", second)

    # Presence: each sees the other, on the other's transport.
    for tab, other, transport in ((alice, "bob", second), (bob, "alice", first)):
        member = presence_member(tab.page, other)
        expect(member).to_have_count(1)
        expect(by_testid(member, "presence-transports")).to_contain_text(transport)

    # Each in turn types (the other sees it), then sends (the other reads it).
    for writer, reader, name, transport in (
        (alice, bob, "alice", first),
        (bob, alice, "bob", second),
    ):
        text = f"hello from {name} on {transport}"
        by_testid(writer.page, "message-input").fill(text)
        expect(by_testid(reader.page, "typing-indicator")).to_have_text(f"{name} is typing…")
        by_testid(writer.page, "message-input").press("Enter")
        mine = messages(writer.page).filter(has_text=text)
        expect(mine).to_have_count(1)
        expect(mine).not_to_have_attribute("data-pending", "true")
        theirs = messages(reader.page).filter(has_text=text)
        expect(theirs).to_have_count(1)
        expect(by_testid(theirs, "message-author")).to_have_text(name)

    # Both screens hold the same conversation, in the same order, once each.
    for tab in (alice, bob):
        expect(by_testid(tab.page, "message-text")).to_have_text(
            [f"hello from alice on {first}", f"hello from bob on {second}"]
        )
        assert tab.dialogs == []
        assert tab.console_errors() == []
