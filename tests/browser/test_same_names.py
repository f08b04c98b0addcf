"""Two people who chose the same name are told apart on the chat page (issue 13)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import NewTab
from tests.browser.pages import by_testid, messages, open_chat, send
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.browser


def test_equal_names_in_a_room_get_an_id_suffix(server: ServerProcess, new_tab: NewTab) -> None:
    first, second = new_tab(), new_tab()
    open_chat(first.page, server.url, "twins", "Sam", "websocket")
    open_chat(second.page, server.url, "twins", "Sam", "websocket")
    names = by_testid(first.page, "presence-name")
    expect(names).to_have_count(2)
    expect(names.nth(0)).to_have_text(re.compile(r"^Sam #\w{4}$"))
    expect(names.nth(1)).to_have_text(re.compile(r"^Sam #\w{4}$"))
    assert names.nth(0).text_content() != names.nth(1).text_content()
    send(second.page, "which Sam?")
    theirs = messages(first.page).filter(has_text="which Sam?")
    expect(by_testid(theirs, "message-author")).to_have_text(re.compile(r"^Sam #\w{4}$"))


@pytest.mark.parametrize(
    "lookalike",
    [
        "\u0430lice",  # Cyrillic a
        "\uff41lice",  # fullwidth a
        "a\u0406ice",  # Cyrillic I for l
        "ALICE",
    ],
)
def test_lookalike_names_get_an_id_suffix(
    server: ServerProcess, new_tab: NewTab, lookalike: str
) -> None:
    """A name that only looks like another's (another script's letter, fullwidth, another case)
    is told apart as an equal one is: else anyone can pass for someone here."""
    first, second = new_tab(), new_tab()
    open_chat(first.page, server.url, "lookalikes", "alice", "websocket")
    open_chat(second.page, server.url, "lookalikes", lookalike, "websocket")
    told_apart = re.compile(rf"^{re.escape(lookalike)} #\w{{4}}$")
    names = by_testid(first.page, "presence-name")
    expect(names).to_have_count(2)
    expect(names.filter(has_text=re.compile(r"^alice #\w{4}$"))).to_have_count(1)
    expect(names.filter(has_text=told_apart)).to_have_count(1)
    send(second.page, "it is me")
    theirs = messages(first.page).filter(has_text="it is me")
    expect(by_testid(theirs, "message-author")).to_have_text(told_apart)


def test_authors_of_one_name_not_in_the_room_are_told_apart(
    server: ServerProcess, new_tab: NewTab
) -> None:
    """Two people of one name who write without joining (nor being here) are known to the page
    only by the name in their messages: still told apart, not both shown bare."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for text in ("I am the real one", "no, I am"):
            session = client.post("/api/session", json={"name": "Kim"})
            assert session.status_code == 201, session.text
            sent = client.post(
                "/api/channels/room:strangers/events",
                json={"type": "chat.message", "data": {"text": text}},
                headers={"Authorization": f"Bearer {session.json()['token']}"},
            )
            assert sent.status_code == 201, sent.text
    tab = new_tab()
    open_chat(tab.page, server.url, "strangers", "viewer", "websocket")
    authors = by_testid(messages(tab.page), "message-author")
    expect(authors).to_have_count(2)
    expect(authors.nth(0)).to_have_text(re.compile(r"^Kim #\w{4}$"))
    expect(authors.nth(1)).to_have_text(re.compile(r"^Kim #\w{4}$"))
    assert authors.nth(0).text_content() != authors.nth(1).text_content()
