"""WebSocket upgrades that the websockets library itself refuses or cannot parse, on the launch
paths where fourcast's protocols serve them: each is answered and closed, and none stays counted
against the socket bound (which would end in 503 for everyone, /healthz included)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fixtures.server import ServerFactory, ServerProcess

KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
HEAD = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
REFUSED = [
    HEAD.replace(b"GET", b"POST") + KEY + b"\r\n",  # 405
    HEAD + b"\r\n",  # no key: 400
    HEAD + KEY.replace(b"13", b"8") + b"\r\n",  # another version: 426 or 400
]
UNPARSED = [
    HEAD + KEY + b"Content-Length: 5\r\n\r\nhello",  # an upgrade with a body
    HEAD + KEY + b"".join(b"X-H%d: v\r\n" % n for n in range(130)) + b"\r\n",  # >128 headers
]
BOUND = 16
"""`max_open_sockets` (its smallest allowed value)."""
FOURCAST_PROTOCOLS = ["python -m app", "uvicorn --http --ws"]


async def answer(server: ServerProcess, request: bytes) -> bytes:
    """Everything the server sends before it closes the connection (bounded: a server that
    never closes fails the test instead of hanging it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


@pytest.mark.parametrize("launch", [*FOURCAST_PROTOCOLS, "uvicorn"])
async def test_refused_upgrades_are_answered_and_never_stay_counted(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch, max_open_sockets=BOUND)
    for n in range(3 * BOUND):
        answered = await answer(server, REFUSED[n % len(REFUSED)])
        assert answered.startswith((b"HTTP/1.1 400", b"HTTP/1.1 405", b"HTTP/1.1 426")), answered
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("launch", FOURCAST_PROTOCOLS)
async def test_upgrades_websockets_cannot_parse_are_answered_400_and_closed(
    start_server: ServerFactory, launch: str
) -> None:
    """uvicorn hands such a connection to the WebSocket protocol, which answers nothing: the
    socket stayed open, outside the head deadline and the socket bound's eviction."""
    server = start_server(launch=launch, max_open_sockets=BOUND)
    for n in range(2 * BOUND):
        answered = await answer(server, UNPARSED[n % len(UNPARSED)])
        assert answered.startswith(b"HTTP/1.1 400"), answered
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200
