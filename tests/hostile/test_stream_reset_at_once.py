"""Clients that ask for an SSE stream and reset the connection at once, many times: every
connection slot taken for them is given back (a slot never released would, at the per-address cap,
refuse that address's streams until a restart)."""

from __future__ import annotations

import asyncio
import socket
import struct

import httpx
import pytest

from tests.clients import eventually
from tests.fixtures.server import ServerFactory

RESETS = 300
REQUEST = b"GET /api/channels/public:reset/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def _ask_and_reset(port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
    writer.transport.abort()


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_streams_reset_at_once_give_back_every_slot(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch, max_connections_per_ip=RESETS * 2)
    for start in range(0, RESETS, 30):
        await asyncio.gather(*(_ask_and_reset(server.port) for _ in range(start, start + 30)))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

        async def released() -> bool:
            text = (await client.get("/metrics")).text
            return "\nfourcast_connections_held 0.0\n" in text

        await eventually(released, timeout=30)
        # And the address can still open a stream (its count is back to 0 too).
        async with client.stream("GET", "/api/channels/public:reset/stream") as response:
            assert response.status_code == 200
