"""A poller's presence held by its keep-alive connection (app/features/presence_polls.py), on
both launch paths, at the HTTP level with raw sockets: present while the connection is open,
polling or not; gone a lease after it closes, or after it becomes a WebSocket."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.clients import eventually, sign_in
from tests.fixtures.server import ServerProcess
from tests.integration.test_polllane import Raw, events_path

LEASE = 1.0
LAUNCHES = ["python -m app", "uvicorn"]
UPGRADE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


def start(start_server: Any, launch: str, monkeypatch: pytest.MonkeyPatch) -> ServerProcess:
    # An idle connection stays open for the whole test on either launch path: only the test
    # closes it (plain uvicorn takes its keep-alive from its own environment variable).
    monkeypatch.setenv("UVICORN_TIMEOUT_KEEP_ALIVE", "300")
    server: ServerProcess = start_server(launch=launch, presence_lease=LEASE, http_keep_alive=300)
    return server


async def members(server: ServerProcess, token: str, room: str) -> set[str]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        response = await client.get(f"/api/channels/room:{room}/presence")
    assert response.status_code == 200
    return {m["user"] for m in response.json()["members"]}


async def polled(conn: Raw, room: str, token: str, times: int, close: bool = False) -> None:
    """Short polls on one connection (on plain uvicorn the first is uvicorn's; the connection
    is adopted by it, and the rest take the quick lane)."""
    extra = f"Authorization: Bearer {token}\r\n" + ("Connection: close\r\n" if close else "")
    for _ in range(times):
        conn.send(events_path(f"room:{room}") + "?after=0", extra=extra)
        assert (await conn.response())[0] == 200


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_poller_is_present_while_its_connection_is_open_and_leaves_after_it_closes(
    start_server: Any, launch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start(start_server, launch, monkeypatch)
    room = "held"
    watcher, _ = await sign_in(server.url, "watcher")
    bob_token, bob = await sign_in(server.url, "bob")
    carol_token, carol = await sign_in(server.url, "carol")
    bob_conn = await Raw.open(server)
    await polled(bob_conn, room, bob_token, 3)
    # Carol polls once, after Bob's last poll, on a connection that closes with it: when her
    # lease has lapsed, so would have any lease Bob's polls left.
    carol_conn = await Raw.open(server)
    await polled(carol_conn, room, carol_token, 1, close=True)
    assert await eventually(
        lambda: _without(server, watcher, room, carol["id"]), timeout=LEASE + 10
    )
    assert await members(server, watcher, room) == {bob["id"]}  # his connection holds him
    bob_conn.close()
    assert await eventually(lambda: _without(server, watcher, room, bob["id"]), timeout=LEASE + 10)
    carol_conn.close()


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("then", ["a WebSocket upgrade", "a poll as nobody", "an SSE stream"])
async def test_a_connection_that_goes_on_to_anything_else_lets_go_of_its_poller(
    start_server: Any, launch: str, then: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start(start_server, launch, monkeypatch)
    room = "moved-on"
    watcher, _ = await sign_in(server.url, "watcher")
    bob_token, bob = await sign_in(server.url, "bob")
    conn = await Raw.open(server)
    await polled(conn, room, bob_token, 3)
    assert await members(server, watcher, room) == {bob["id"]}
    # The connection stays open, doing something else: Bob's polls are over, so he leaves a
    # lease later (a connection still holding him would keep him present for good).
    if then == "a WebSocket upgrade":
        conn.send("/ws", extra=UPGRADE)
        head = await conn.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
    elif then == "a poll as nobody":
        conn.send(events_path(f"room:{room}") + "?after=0")
        assert (await conn.response())[0] == 401
    else:
        conn.send("/api/channels/public:elsewhere/stream")
        head = await conn.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
    assert await eventually(lambda: _without(server, watcher, room, bob["id"]), timeout=LEASE + 10)
    conn.close()


async def _without(server: ServerProcess, token: str, room: str, user: str) -> bool:
    return user not in await members(server, token, room)
