"""History names its authors in a room of more members than one page: the chat page reads a few
pages of the member list (a bound on what a visit costs) and names anyone past them by the name
the server put in their message."""

from __future__ import annotations

import re
import sqlite3

import httpx
import pytest
from playwright.sync_api import Request, expect

from tests.browser.conftest import NewTab
from tests.browser.pages import by_testid, messages, open_chat
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.browser

CROWD = 3_500
"""Past the page's three pages of 1,000."""


def say(server: ServerProcess, name: str, text: str) -> str:
    """A guest joins the room and writes in it over REST; their id."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        session = client.post("/api/session", json={"name": name})
        assert session.status_code == 201, session.text
        auth = {"Authorization": f"Bearer {session.json()['token']}"}
        assert client.post("/api/rooms/crowd/join", headers=auth).status_code == 200
        sent = client.post(
            "/api/channels/room:crowd/events",
            json={"type": "chat.message", "data": {"text": text}},
            headers=auth,
        )
        assert sent.status_code in (201, 202), sent.text
        return str(session.json()["user"]["id"])


def crowd_around(server: ServerProcess, first: str, middle: str) -> None:
    """CROWD people in the room before everyone else, `first` before them and `middle` the
    1,201st: on the second page of 1,000, past a first page of the default 500."""
    db = sqlite3.connect(server.data_dir / "fourcast.db")
    try:
        (start,) = db.execute("SELECT min(joined_at) FROM memberships").fetchone()
        start -= CROWD + 10
        db.executemany(
            "INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)",
            [(f"c{n:05d}", f"crowd {n}", start) for n in range(CROWD)],
        )
        db.executemany(
            "INSERT INTO memberships (room, user_id, joined_at) VALUES ('crowd', ?, ?)",
            [(f"c{n:05d}", start + n) for n in range(CROWD)],
        )
        for user_id, joined_at in ((first, start - 1), (middle, start + 1_199.5)):
            db.execute(
                "UPDATE memberships SET joined_at = ? WHERE user_id = ?", (joined_at, user_id)
            )
        db.commit()
    finally:
        db.close()


def test_history_names_authors_past_the_first_member_pages(
    server: ServerProcess, new_tab: NewTab
) -> None:
    first = say(server, "Sam", "from the first Sam")
    middle = say(server, "Sam", "from the other Sam")
    say(server, "Zoe", "from Zoe, who joined after the crowd")
    server.stop()
    crowd_around(server, first, middle)
    server.start()

    tab = new_tab()
    asked: list[str] = []

    def on_request(request: Request) -> None:
        if "/members" in request.url:
            asked.append(request.url)

    tab.page.on("request", on_request)
    open_chat(tab.page, server.url, "crowd", "Reader", "websocket")
    authors = {
        text: by_testid(messages(tab.page).filter(has_text=text), "message-author")
        for text in ("from the first Sam", "from the other Sam", "from Zoe")
    }
    # Both Sams are known from the member pages (the second on page two), so both are told apart.
    expect(authors["from the first Sam"]).to_have_text(re.compile(rf"^Sam #{first[-4:]}$"))
    expect(authors["from the other Sam"]).to_have_text(re.compile(rf"^Sam #{middle[-4:]}$"))
    # Zoe is past the pages read: named by her message.
    expect(authors["from Zoe"]).to_have_text("Zoe")
    assert len(asked) == 3, asked
    assert all("limit=1000" in url for url in asked), asked
    assert tab.console_errors() == []
