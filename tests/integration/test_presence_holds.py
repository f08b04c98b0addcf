"""A poller's presence held by its keep-alive connection (app/features/presence_polls.py), on
both launch paths, at the HTTP level with raw sockets: present while the connection is open,
polling or not; gone a lease after it closes, or after it becomes a WebSocket."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.clients import eventually, publish_many, sign_in, until_parked
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
    watcher, bob, _, bob_conn = await bob_polling(server, room, 3)
    await a_lease_has_passed(server, watcher)
    assert await members(server, watcher, room) == {bob["id"]}  # his connection holds him
    bob_conn.close()
    assert await eventually(lambda: _without(server, watcher, room, bob["id"]), timeout=LEASE + 10)


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize(
    "then",
    [
        "a WebSocket upgrade",
        "an SSE stream",
        "a poll as nobody",
        "a poll after signing out",
        "a waiting poll answered after signing out",
        "a look at history",
        "a bad parameter",
    ],
)
async def test_a_connection_that_goes_on_to_anything_else_lets_go_of_its_poller(
    start_server: Any, launch: str, then: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start(start_server, launch, monkeypatch)
    room = "moved-on"
    watcher, bob, bob_token, conn = await bob_polling(server, room, 3)
    assert await members(server, watcher, room) == {bob["id"]}
    # The connection stays open, doing something else: Bob's polls are over, so he leaves a
    # lease later (a connection still holding him would keep him present for good).
    if then == "a WebSocket upgrade":
        conn.send("/ws", extra=UPGRADE)
        head = await conn.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
    elif then == "an SSE stream":
        conn.send("/api/channels/public:elsewhere/stream")
        head = await conn.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
    elif then == "a waiting poll answered after signing out":
        channel = f"room:{room}"
        cursor = (await publish_many(server.url, channel, 1, server.service_headers))[0]["id"]
        conn.send(
            events_path(channel) + f"?after={cursor}&wait=60",
            extra=f"Authorization: Bearer {bob_token}\r\n",
        )
        await until_parked(server.url, 1)
        async with httpx.AsyncClient(base_url=server.url) as client:
            signed_out = await client.delete(
                "/api/session", headers={"Authorization": f"Bearer {bob_token}"}
            )
        assert signed_out.status_code == 204
        await publish_many(server.url, channel, 1, server.service_headers, start=2)
        assert (await conn.response())[0] == 401  # woken by the event, refused
    else:
        target, status = events_path(f"room:{room}") + "?after=0", 200
        if then == "a poll as nobody":
            bob_token, status = "", 401
        elif then == "a poll after signing out":
            async with httpx.AsyncClient(base_url=server.url) as client:
                signed_out = await client.delete(
                    "/api/session", headers={"Authorization": f"Bearer {bob_token}"}
                )
            assert signed_out.status_code == 204
            status = 401
        elif then == "a look at history":
            target = events_path(f"room:{room}")  # no cursor: not a poller following the room
        else:
            target, status = target + "&limit=many", 400
        conn.send(target, extra=f"Authorization: Bearer {bob_token}\r\n" if bob_token else "")
        assert (await conn.response())[0] == status
    assert await eventually(lambda: _without(server, watcher, room, bob["id"]), timeout=LEASE + 10)
    conn.close()


async def bob_polling(
    server: ServerProcess, room: str, times: int
) -> tuple[str, dict[str, Any], str, Raw]:
    """A watcher's token; Bob, his token and his connection, after `times` short polls."""
    watcher, _ = await sign_in(server.url, "watcher")
    bob_token, bob = await sign_in(server.url, "bob")
    conn = await Raw.open(server)
    await polled(conn, room, bob_token, times)
    return watcher, bob, bob_token, conn


async def a_lease_has_passed(server: ServerProcess, watcher: str) -> None:
    """Carol polls once, now, in a room of her own (her arrival in another would be news
    there), on a connection that closes with the poll: once her lease has lapsed, so would
    have any lease left by polls before hers."""
    carol_token, carol = await sign_in(server.url, "carol")
    conn = await Raw.open(server)
    await polled(conn, "carols", carol_token, 1, close=True)
    conn.close()
    assert await eventually(
        lambda: _without(server, watcher, "carols", carol["id"]), timeout=LEASE + 10
    )


async def _without(server: ServerProcess, token: str, room: str, user: str) -> bool:
    return user not in await members(server, token, room)


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_blank_line_does_not_keep_an_idle_connection_or_its_poller(
    start_server: Any, launch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httptools skips blank lines between requests: such bytes begin no request, so the
    connection stays idle and is closed after its keep-alive, letting go of its poller."""
    monkeypatch.setenv("UVICORN_TIMEOUT_KEEP_ALIVE", "1")
    server: ServerProcess = start_server(launch=launch, presence_lease=LEASE, http_keep_alive=1)
    room = "blank"
    watcher, bob, _, conn = await bob_polling(server, room, 3)
    conn.writer.write(b"\r\n")
    assert await asyncio.wait_for(conn.reader.read(), 15) == b""  # closed by the server
    assert await eventually(lambda: _without(server, watcher, room, bob["id"]), timeout=LEASE + 10)
    conn.close()


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_request_queued_behind_a_parked_poll_lets_go_only_once_it_starts(
    start_server: Any, launch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start(start_server, launch, monkeypatch)
    room = "queued"
    watcher, bob, bob_token, conn = await bob_polling(server, room, 2)
    # A long poll parked past the lease, with a request queued behind it on the same socket.
    published = await publish_many(server.url, f"room:{room}", 1, server.service_headers)
    head = published[0]["id"]
    auth = f"Authorization: Bearer {bob_token}\r\n"
    conn.send(events_path(f"room:{room}") + f"?after={head}&wait=60", "/healthz", extra=auth)
    await until_parked(server.url, 1)
    await a_lease_has_passed(server, watcher)
    assert await members(server, watcher, room) == {bob["id"]}  # still held by the parked poll
    await publish_many(server.url, f"room:{room}", 1, server.service_headers, start=2)
    assert (await conn.response())[0] == 200  # the poll's answer, then the queued request's
    assert (await conn.response())[0] == 200
    assert await eventually(lambda: _without(server, watcher, room, bob["id"]), timeout=LEASE + 10)
    conn.close()
