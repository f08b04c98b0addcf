"""WebSocket keepalive pings (`python -m app`, every `heartbeat` seconds): a peer that answers
them stays connected, and one that stops answering is closed once `heartbeat_grace` runs out.

The pings are sent by one sweep a second for every connection (app/server/sweep.py); these tests
speak raw RFC 6455 so that they see each ping and decide whether to answer it. Their time bounds
only bound a failure: each step waits for a frame or for the close.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct

from tests.fixtures.server import ServerFactory

PING, PONG, CLOSE = 0x9, 0xA, 0x8


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: fourcast.v1\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def _frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One server frame (unmasked, unfragmented): its opcode and payload."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


def _pong(payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | PONG, 0x80 | len(payload)]) + mask + masked


async def _next_control(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next ping or close, skipping the app's own messages (the welcome)."""
    while True:
        opcode, payload = await _frame(reader)
        if opcode in (PING, CLOSE):
            return opcode, payload


async def test_a_peer_answering_pings_stays_and_one_that_stops_is_closed(
    start_server: ServerFactory,
) -> None:
    server = start_server(heartbeat=1, heartbeat_grace=1)
    reader, writer = await _open(server.port)
    try:
        async with asyncio.timeout(30):
            # Answered: ping after ping, and the connection stays open.
            for _ in range(3):
                opcode, payload = await _next_control(reader)
                assert opcode == PING, (opcode, payload)
                writer.write(_pong(payload))
                await writer.drain()
            # Unanswered: the next ping is the last; the server closes with 1011.
            opcode, _ = await _next_control(reader)
            assert opcode == PING
            opcode, payload = await _next_control(reader)
        assert opcode == CLOSE, (opcode, payload)
        assert struct.unpack("!H", payload[:2])[0] == 1011
        assert b"keepalive" in payload[2:]
    finally:
        writer.close()


async def test_pings_reach_many_connections_from_one_sweep(start_server: ServerFactory) -> None:
    server = start_server(heartbeat=1, heartbeat_grace=5)
    sockets = [await _open(server.port) for _ in range(50)]
    try:
        async with asyncio.timeout(30):
            pings = await asyncio.gather(*(_next_control(reader) for reader, _ in sockets))
        assert {opcode for opcode, _ in pings} == {PING}
    finally:
        for _, writer in sockets:
            writer.close()
