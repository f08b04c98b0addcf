"""WebSocket upgrades that the websockets library itself refuses or cannot parse, on the launch
paths where fourcast's protocols serve them: each is answered and closed, and none stays counted
against the socket bound (which would end in 503 for everyone, /healthz included)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

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


async def test_plain_uvicorn_refuses_an_oversize_message_as_it_inflates_it(
    start_server: ServerFactory,
) -> None:
    """Plain uvicorn negotiates compression and reads messages up to its own 16 MiB: a 15 KiB
    deflated message of 15 MiB was inflated and buffered whole before the app's 64 KiB limit
    answered 1009. The app hands its limit to uvicorn's parser, which refuses it as it goes
    (its own reason, where the app's is "message too large")."""
    server = start_server(launch="uvicorn")
    bomb = '{"op":"ping","ts":"' + "a" * (15 * 1024 * 1024) + '"}'
    async with websockets.connect(server.ws_url, compression="deflate", max_size=None) as ws:
        assert ws.protocol.extensions, "plain uvicorn negotiates compression"
        await ws.recv()  # welcome
        await ws.send(bomb)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert closed.value.rcvd.reason != "message too large", "inflated whole, then refused"


@pytest.mark.parametrize("launch", [*FOURCAST_PROTOCOLS, "uvicorn"])
async def test_upgrades_the_app_refuses_log_no_error(
    start_server: ServerFactory, launch: str
) -> None:
    """A refusal is the handshake's end, not a fault: any client could otherwise make the
    server write an ERROR line per refused upgrade (uvicorn's 'returned without completing
    handshake')."""
    server = start_server(launch=launch)
    for _ in range(3):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                server.ws_url,
                subprotocols=["fourcast.v1", "fourcast.bearer.bad"],  # type: ignore[list-item]
            )
        assert refused.value.response.status_code == 401
    # A whole handshake and close after the refusals: their tasks have long ended.
    async with websockets.connect(server.ws_url, subprotocols=["fourcast.v1"]) as ws:  # type: ignore[list-item]
        await ws.recv()
    assert "without completing handshake" not in server.log()
    assert "ERROR" not in server.log()
