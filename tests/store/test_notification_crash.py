"""kill -9 of the server between a notification's row and its event (app/features/notifications.py).

The row is committed first, then its event published: a server killed in between left a row with
no event, which the person saw in their list but was never told of live (nor on their channel),
and which a service's retry under the same Idempotency-Key doubled. The window is held open here
without sleeps: PostgreSQL's `events` table is locked, so the event's INSERT waits; once the row is
visible the server is stopped (SIGSTOP), then killed (SIGKILL), and its sessions ended so that
nothing it sent commits. Started again, it publishes the rows left without an event.

A read mark is the same: committed, then its `notification.read` event published; a server killed
in between left the notification read with the person's other clients never told (their unread
count wrong until they load it again). Started again, it tells them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.store.db import create_engine
from tests.clients import eventually, sign_in
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import ServerFactory, ServerProcess

pytestmark = pytest.mark.postgres

LAUNCHES = ["python -m app", "uvicorn"]


def _rows(pg: PostgresServer, database: str) -> list[tuple[str, str]]:
    out = pg.psql("SELECT id, coalesce(event_seq::text, '') FROM notifications", database)
    return [tuple(line.split("|")) for line in out.split()]  # type: ignore[misc]


def _others(pg: PostgresServer, database: str, holder: int) -> int:
    """Sessions on the database other than the test's own (the killed server's)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        f" AND pid NOT IN (pg_backend_pid(), {holder})"
    )
    return int(pg.psql(query, database))


def _kill(node: ServerProcess) -> None:
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGSTOP)  # no further step from here
    node.kill()


async def _send(node: ServerProcess, body: dict[str, Any], key: str) -> None:
    headers = {**node.service_headers, "Idempotency-Key": key}
    with contextlib.suppress(httpx.TransportError):  # killed before it answers
        async with httpx.AsyncClient(base_url=node.url, timeout=60) as client:
            await client.post("/api/notifications", json=body, headers=headers)


async def _killed_in_the_window(
    pg: PostgresServer,
    url: str,
    node: ServerProcess,
    request: Callable[[], Awaitable[None]],
    written: Callable[[], Awaitable[Any]],
) -> Any:
    """Run `request` with the events table locked (the event's INSERT waits), kill the server
    once `written` sees the store's write committed, and end its sessions: nothing it sent
    after commits. What `written` saw."""
    database = url.rsplit("/", 1)[1]
    engine = create_engine(url)
    try:
        async with engine.connect() as holder:
            pid = int(await holder.scalar(text("SELECT pg_backend_pid()")))
            await holder.execute(text("LOCK TABLE events IN SHARE MODE"))  # INSERTs wait
            requesting = asyncio.create_task(request())
            seen = await eventually(written)
            await asyncio.to_thread(_kill, node)
            await requesting
            pg.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname ="
                f" current_database() AND pid NOT IN (pg_backend_pid(), {pid})",
                database,
            )

            async def gone() -> bool:
                return await asyncio.to_thread(_others, pg, database, pid) == 0

            await eventually(gone, timeout=30)
            await holder.rollback()
    finally:
        await engine.dispose()
    return seen


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_notification_killed_before_its_event_gets_it_once_after_a_restart(
    postgres_server: PostgresServer, start_server: ServerFactory, launch: str
) -> None:
    url = postgres_server.create_database("killed")
    database = url.rsplit("/", 1)[1]
    node = start_server(launch=launch, database_url=url)
    token, user = await sign_in(node.url, "nora")
    body = {"user": user["id"], "title": "parcel sent"}
    rows = await _killed_in_the_window(
        postgres_server,
        url,
        node,
        lambda: _send(node, body, "parcel-1"),
        lambda: asyncio.to_thread(_rows, postgres_server, database),
    )
    assert rows == [(rows[0][0], "")]  # kept, and no event yet
    row_id = rows[0][0]

    await asyncio.to_thread(node.start)
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        # The service's retry, under the same key, gets that one notification: not a second.
        headers = {**node.service_headers, "Idempotency-Key": "parcel-1"}
        retry = await client.post("/api/notifications", json=body, headers=headers)
        client.headers["Authorization"] = f"Bearer {token}"
        listed = (await client.get("/api/notifications")).json()["notifications"]
        events = (
            await client.get(f"/api/channels/user:{user['id']}/events", params={"after": "0"})
        ).json()["events"]
    told = [e["data"]["id"] for e in events if e["type"] == "notification"]
    assert [n["id"] for n in listed] == [row_id]
    assert told == [row_id]  # the person is told of it, once
    assert retry.status_code == 200 and retry.json()["id"] == row_id, retry.text


def _reads(pg: PostgresServer, database: str) -> int:
    return int(pg.psql("SELECT count(*) FROM notifications WHERE read_at IS NOT NULL", database))


@pytest.mark.parametrize("path", ["{id}/read", "read-all"])
@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_read_mark_killed_before_its_event_is_told_after_a_restart(
    postgres_server: PostgresServer, start_server: ServerFactory, launch: str, path: str
) -> None:
    url = postgres_server.create_database("read_killed")
    database = url.rsplit("/", 1)[1]
    node = start_server(launch=launch, database_url=url)
    token, user = await sign_in(node.url, "nora")
    me = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        sent = [
            await client.post(
                "/api/notifications",
                json={"user": user["id"], "title": title},
                headers=node.service_headers,
            )
            for title in ("parcel sent", "parcel due")
        ]
    assert [r.status_code for r in sent] == [201, 201]
    first = sent[0].json()["id"]
    read = f"/api/notifications/{path.format(id=first)}"

    async def mark() -> None:
        with contextlib.suppress(httpx.TransportError):  # killed before it answers
            async with httpx.AsyncClient(base_url=node.url, headers=me, timeout=60) as client:
                await client.post(read)

    async def marked() -> bool:
        return await asyncio.to_thread(_reads, postgres_server, database) > 0

    await _killed_in_the_window(postgres_server, url, node, mark, marked)

    await asyncio.to_thread(node.start)
    async with httpx.AsyncClient(base_url=node.url, headers=me, timeout=10) as client:
        unread = (await client.get("/api/notifications")).json()["unread"]
        events = (
            await client.get(f"/api/channels/user:{user['id']}/events", params={"after": "0"})
        ).json()["events"]
    told = [e["data"] for e in events if e["type"] == "notification.read"]
    expected = {"id": first, "unread": 1} if path == "{id}/read" else {"id": None, "unread": 0}
    assert unread == expected["unread"]
    assert told == [expected]  # the person's other clients are told, once
