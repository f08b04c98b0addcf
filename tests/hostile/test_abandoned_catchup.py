"""A WebSocket client that asks for a long history and leaves while it is being copied: the
server lets go of everything the connection held (its cap slot, its subscription), on both
launch paths."""

from __future__ import annotations

import asyncio
import base64
import os

import httpx
import orjson
import pytest

from tests.clients import eventually, publish_many
from tests.fixtures.server import ServerFactory, ServerProcess

LAUNCHES = ["python -m app", "uvicorn"]
CHANNEL = "public:abandoned"


def client_frame(text: str) -> bytes:
    """A masked text frame, as a browser sends it (payload under 126 bytes)."""
    data = text.encode()
    mask = os.urandom(4)
    return (
        bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    )


async def subscribe_and_leave(server: ServerProcess) -> None:
    """Opens /ws, reads the welcome, asks for the whole history, and closes the socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    welcome = await reader.readexactly(2)
    await reader.readexactly(welcome[1] & 0x7F)  # the welcome op (a short frame)
    request = orjson.dumps({"op": "subscribe", "channel": CHANNEL, "after": 0}).decode()
    writer.write(client_frame(request))
    await writer.drain()
    writer.close()


async def gauge(client: httpx.AsyncClient, name: str) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_websocket_that_leaves_during_its_catch_up_gives_back_what_it_held(
    start_server: ServerFactory, launch: str
) -> None:
    # A history of several sink-fulls: the catch-up pages it out, waiting for room in between.
    server = start_server(launch=launch, queue_max_events=50)
    await publish_many(server.url, CHANNEL, 600, server.service_headers, concurrency=8)
    for _ in range(3):
        await subscribe_and_leave(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

        async def all_given_back() -> bool:
            return (
                await gauge(client, "fourcast_connections_held") == 0
                and await gauge(client, 'fourcast_open_connections{transport="websocket"}') == 0
            )

        await eventually(all_given_back, timeout=20)
