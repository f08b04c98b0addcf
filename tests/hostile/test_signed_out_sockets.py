"""WebSocket clients that read nothing. One whose person signs out (or whose credential expires)
is closed with 4401, a close that waits for the socket, which such a client never frees:
meanwhile none of its messages may be acted on, or it publishes as someone no longer signed
in. One that sends pings must not make the server hold its pongs without end."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

import httpx
import orjson
import pytest

from tests.clients import sign_in
from tests.fixtures.server import ServerFactory


def frame(message: dict[str, object]) -> bytes:
    """A masked (zero key) text frame, as a client sends."""
    data = orjson.dumps(message)
    size = len(data)
    if size < 126:
        head = bytes([0x81, 0x80 | size])
    elif size < 65536:
        head = bytes([0x81, 0x80 | 126]) + struct.pack("!H", size)
    else:
        head = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", size)
    return head + b"\0\0\0\0" + data


def open_socket(port: int, token: str) -> socket.socket:
    """A WebSocket that will never read what it is sent (a small receive buffer)."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    bearer = f"Sec-WebSocket-Protocol: fourcast.bearer.{token}\r\n" if token else ""
    raw.sendall(
        f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{bearer}\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    return raw


def read_to_the_end(raw: socket.socket) -> None:
    """Read until the server closes the connection (or resets it)."""
    raw.settimeout(120)
    try:
        while raw.recv(65536):
            pass
    except ConnectionResetError:
        pass


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_signed_out_socket_that_reads_nothing_publishes_nothing(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch, heartbeat=1, heartbeat_grace=1)
    token, user = await sign_in(server.url, "mallory")
    raw = await asyncio.to_thread(open_socket, server.port, token)
    try:
        raw.sendall(frame({"op": "subscribe", "channel": "public:flood", "ref": 1}))
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            # Fill the way to the client, which reads nothing: the close cannot be written.
            big = {"type": "t", "data": "x" * 60_000}
            flood = "/api/channels/public:flood/events"
            for _ in range(15):
                published = await asyncio.gather(
                    *(
                        client.post(flood, json=big, headers=server.service_headers)
                        for _ in range(8)
                    )
                )
                assert {answer.status_code for answer in published} == {201}
            bearer = {"Authorization": f"Bearer {token}"}
            assert (await client.delete("/api/session", headers=bearer)).status_code == 204
            for n in range(5):
                text = {"text": f"sent {n} after signing out"}
                message = {"op": "publish", "channel": "room:lobby", "type": "chat.message"}
                raw.sendall(frame({**message, "data": text, "ref": 10 + n}))
            await asyncio.to_thread(read_to_the_end, raw)  # every message was seen to by then
            reader, _ = await sign_in(server.url, "witness")
            history = await client.get(
                "/api/rooms/lobby/messages", headers={"Authorization": f"Bearer {reader}"}
            )
        senders = {message["from"] for message in history.json()["messages"]}
        assert f"user:{user['id']}" not in senders
    finally:
        raw.close()


def resident_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_pings_from_a_client_that_reads_nothing_hold_no_memory_without_end(
    start_server: ServerFactory, launch: str
) -> None:
    """Each ping's pong was written whatever the socket's state, and reading is paused only
    after data messages: 64 MiB of pings from a client reading nothing grew the server by about
    as much. Past a bound (4 MiB waiting in the transport) the pongs are dropped."""
    server = start_server(launch=launch)
    assert server.process is not None
    raw = await asyncio.to_thread(open_socket, server.port, "")
    try:
        ping = bytes([0x89, 0x80 | 125]) + b"\0\0\0\0" + os.urandom(125)
        before = resident_mib(server.process.pid)
        for _ in range(64):
            await asyncio.to_thread(raw.sendall, ping * 8000)  # 1 MiB of pings
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            assert (await client.get("/healthz")).status_code == 200  # all of them were read
        grown = resident_mib(server.process.pid) - before
        assert grown < 32, f"the server grew by {grown:.0f} MiB"
    finally:
        raw.close()
