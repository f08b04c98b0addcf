"""What app/server/hangups.py asks the kernel, over real sockets: a TCP peer still connected, one
that has closed or reset (with bytes still unread, as behind a paused read), and a socket
that is not TCP."""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from typing import Any

import pytest

from app.server.hangups import peer_gone

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="TCP_INFO's states are Linux's; elsewhere the check is off"
)


class Accepted(asyncio.Protocol):
    """The server's end of each connection, reading paused as uvicorn pauses it."""

    def __init__(self, transports: asyncio.Queue[asyncio.Transport]) -> None:
        self.transports = transports

    def connection_made(self, transport: Any) -> None:
        transport.pause_reading()
        self.transports.put_nowait(transport)


async def _state_is(transport: Any, gone: bool) -> bool:
    """Wait (bounded) for the kernel to take in what the peer did: loopback needs a turn."""
    for _ in range(1000):  # ten seconds at most
        if peer_gone(transport) is gone:
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_peer_that_closes_or_resets_is_seen_gone_with_its_bytes_unread(how: str) -> None:
    transports: asyncio.Queue[asyncio.Transport] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Accepted(transports), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    try:
        accepted = await asyncio.wait_for(transports.get(), 10)
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # never read by the server
        assert await _state_is(accepted, gone=False)
        if how == "reset":
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        assert await _state_is(accepted, gone=True)
        accepted.close()
    finally:
        client.close()
        server.close()
        await server.wait_closed()


def test_a_socket_that_is_not_tcp_is_never_called_gone() -> None:
    left, right = socket.socketpair()
    try:
        right.close()

        class Transport:
            def get_extra_info(self, name: str) -> Any:
                return left if name == "socket" else None

        assert peer_gone(Transport()) is False
    finally:
        left.close()
