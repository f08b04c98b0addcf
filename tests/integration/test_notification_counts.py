"""A notification and a "mark read" at the same moment: the unread count a client ends with.

The bell (static/js/notifications.js) adds one for each `notification` event and takes the count of
each `notification.read`. Each change commits, then publishes its event: two at once could commit
in one order and publish in the other, and the read's count, read in its transaction, disagreed
with the events before it (reproduced on PostgreSQL: a third of 60 rounds ended one off, either
way). A person's lock from the write to its event (app/store/person_lock.py) makes the events'
order the writes' order on one node (across nodes it is not held: docs/protocol.md). A burst
of notifications to many people at once is not slowed by it (it holds no database connection).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.clients import sign_in
from tests.fixtures.server import ServerFactory

ROUNDS = 60


class Bell:
    """What static/js/notifications.js makes of a person's notifications and their events."""

    def __init__(self, listed: dict[str, Any]) -> None:
        self.items = {n["id"] for n in listed["notifications"]}
        self.unread: int = listed["unread"]

    def apply(self, event: dict[str, Any]) -> None:
        data = event["data"]
        if event["type"] == "notification.read":
            if data["id"] is None:
                self.items.clear()
            else:
                self.items.discard(data["id"])
            self.unread = data["unread"]
        elif event["type"] == "notification" and not (data["id"] in self.items or data["read_at"]):
            self.items.add(data["id"])
            self.unread += 1


@pytest.mark.parametrize(
    "setup",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("postgres on redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ],
)
async def test_a_notification_and_a_read_at_once_leave_clients_the_right_count(
    start_server: ServerFactory, request: pytest.FixtureRequest, setup: str
) -> None:
    settings: dict[str, Any] = {}
    if setup != "sqlite":
        settings["database_url"] = request.getfixturevalue("fresh_postgres_url")
    if setup == "postgres on redis":
        settings["redis_url"] = request.getfixturevalue("redis_url")
    sender = reader = start_server(**settings)
    token, user = await sign_in(sender.url, "uma")
    channel = f"/api/channels/user:{user['id']}/events"
    wrong = []
    async with (
        httpx.AsyncClient(base_url=sender.url, headers=sender.service_headers) as service,
        httpx.AsyncClient(base_url=reader.url, headers={"Authorization": f"Bearer {token}"}) as me,
    ):

        async def send(n: int) -> str:
            sent = await service.post(
                "/api/notifications", json={"user": user["id"], "title": f"n{n}"}, timeout=30
            )
            assert sent.status_code == 201, sent.text
            return str(sent.json()["id"])

        last = await send(-1)
        after = (await me.get(channel, params={"limit": "1"})).json()["next"]
        for n in range(ROUNDS):
            bell = Bell((await me.get("/api/notifications?unread=true")).json())
            path = "read-all" if n % 2 else f"{last}/read"
            last, read = await asyncio.gather(
                send(n), me.post(f"/api/notifications/{path}", timeout=30)
            )
            assert read.status_code == 200, read.text
            page = (await me.get(channel, params={"after": after})).json()
            after = page["next"]
            for event in page["events"]:
                bell.apply(event)
            unread = (await me.get("/api/notifications")).json()["unread"]
            if bell.unread != unread:
                told = [(e["type"], e["data"].get("unread")) for e in page["events"]]
                wrong.append({"round": n, path: told, "bell": bell.unread, "unread": unread})
    assert wrong == []


@pytest.mark.postgres
async def test_a_burst_of_notifications_to_many_people_is_not_held_up(
    start_server: ServerFactory, fresh_postgres_url: str
) -> None:
    """Each person's lock is held from the write to the event: one that held a pooled connection
    meanwhile let 60 sends at once take the pool while their events waited for the journal,
    which needed a connection too, and every send failed 503 after the pool's timeout."""
    server = start_server(database_url=fresh_postgres_url, signup_burst=100)
    people = [(await sign_in(server.url, f"p{n}"))[1]["id"] for n in range(60)]
    async with httpx.AsyncClient(base_url=server.url, headers=server.service_headers) as service:

        async def send(person: str) -> int:
            sent = await service.post(
                "/api/notifications", json={"user": person, "title": "hi"}, timeout=60
            )
            return sent.status_code

        codes = await asyncio.gather(*(send(person) for person in people))
    assert codes == [201] * len(people)
