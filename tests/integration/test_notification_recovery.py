"""Notifications (and read marks) a stopped server left without their event are published as a
server starts (app/features/notifications.py): once each, under the key their request used.

The states a kill -9 leaves are made here in the stopped server's SQLite database: a row whose
event was never published, and a row whose event was kept but not yet attached to it (the kill
came between the two); the same of read marks. The kills themselves are in
tests/store/test_notification_crash.py. The recovery runs in the app's start-up, alike on both
launch paths: one `python -m app` node per bus backend.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import httpx
import pytest

from tests.clients import sign_in
from tests.fixtures.server import ServerFactory

LEFT = "0123456789abcdef"
"""The id of the notification whose event was never published."""
READ = "notification.read\x1e"
"""The key a read mark of one notification is told under is this and its id."""


def _leave_unsent(path: str, user: str, attached: str) -> None:
    """What a server killed mid-send leaves: `attached`'s event kept but not attached to its
    row, and a row LEFT whose event was never published."""
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE notifications SET event_channel = NULL, event_seq = NULL,"
            " publish_key = 'notification' || char(30) || id WHERE id = ?",
            (attached,),
        )
        db.execute(
            "INSERT INTO notifications (id, user_id, title, body, created_at, publish_key)"
            " VALUES (?, ?, 'left unsent', '', ?, ?)",
            (LEFT, user, time.time() * 1000, f"notification\x1e{LEFT}"),
        )


def _unsent(path: str) -> list[Any]:
    with sqlite3.connect(path) as db:
        query = "SELECT id FROM notifications WHERE publish_key IS NOT NULL OR event_seq IS NULL"
        return db.execute(query).fetchall()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_restart_publishes_each_notification_left_unsent_once(
    start_server: ServerFactory, request: pytest.FixtureRequest, backend: str
) -> None:
    settings: dict[str, Any] = {}
    if backend == "redis":
        settings["redis_url"] = request.getfixturevalue("redis_url")
    node = start_server(**settings)
    path = str(node.data_dir / "fourcast.db")
    token, user = await sign_in(node.url, "uma")
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        sent = [
            await client.post(
                "/api/notifications",
                json={"user": user["id"], "title": f"n{n}"},
                headers=node.service_headers,
            )
            for n in range(2)
        ]
    assert [r.status_code for r in sent] == [201, 201]
    first, second = (r.json()["id"] for r in sent)
    await asyncio.to_thread(node.stop)
    await asyncio.to_thread(_leave_unsent, path, user["id"], first)

    await asyncio.to_thread(node.start)
    async with httpx.AsyncClient(
        base_url=node.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        listed = (await client.get("/api/notifications")).json()["notifications"]
        events = (
            await client.get(f"/api/channels/user:{user['id']}/events", params={"after": "0"})
        ).json()["events"]
    told = [e["data"]["id"] for e in events if e["type"] == "notification"]
    assert told == [first, second, LEFT]  # the kept event found, not told twice
    assert sorted(n["id"] for n in listed) == sorted([first, second, LEFT])
    assert await asyncio.to_thread(_unsent, path) == []  # every row has its event attached


def _leave_untold(path: str, told: str, untold: str) -> None:
    """What servers killed mid-mark leave: `told`'s event kept but its key not dropped, and
    `untold` marked by a "mark all read" whose event was never published."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE notifications SET read_key = ? WHERE id = ?", (f"{READ}{told}", told))
        db.execute(
            "UPDATE notifications SET read_at = 1, read_key = ? WHERE id = ?",
            ("notification.read-all\x1e0123456789abcdef", untold),
        )


def _untold(path: str) -> list[Any]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id FROM notifications WHERE read_key IS NOT NULL").fetchall()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_restart_tells_each_read_mark_left_untold_once(
    start_server: ServerFactory, request: pytest.FixtureRequest, backend: str
) -> None:
    settings: dict[str, Any] = {}
    if backend == "redis":
        settings["redis_url"] = request.getfixturevalue("redis_url")
    node = start_server(**settings)
    path = str(node.data_dir / "fourcast.db")
    token, user = await sign_in(node.url, "uma")
    me = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        sent = [
            await client.post(
                "/api/notifications",
                json={"user": user["id"], "title": f"n{n}"},
                headers=node.service_headers,
            )
            for n in range(3)
        ]
        first, second, _ = (r.json()["id"] for r in sent)
        read = await client.post(f"/api/notifications/{first}/read", headers=me)
    assert read.json() == {"unread": 2}
    await asyncio.to_thread(node.stop)
    await asyncio.to_thread(_leave_untold, path, first, second)

    await asyncio.to_thread(node.start)
    async with httpx.AsyncClient(base_url=node.url, timeout=10, headers=me) as client:
        unread = (await client.get("/api/notifications")).json()["unread"]
        events = (
            await client.get(f"/api/channels/user:{user['id']}/events", params={"after": "0"})
        ).json()["events"]
    told = [e["data"] for e in events if e["type"] == "notification.read"]
    assert unread == 1
    assert told == [{"id": first, "unread": 2}, {"id": None, "unread": 1}]  # each once
    assert await asyncio.to_thread(_untold, path) == []  # every mark's event is kept
