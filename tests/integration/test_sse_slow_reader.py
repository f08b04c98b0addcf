"""An SSE reader that reads nothing is cut off at the send timeout, or at once when its queue
overflows while a send waits for it, and counted as a slow reader
(`fourcast_slow_readers_cut_off_total{transport="sse"}`), as a WebSocket's is."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from tests.clients import eventually
from tests.fixtures.server import ServerFactory

PAD = "x" * 32 * 1024
MOST_EVENTS = 600
"""19 MiB: far more than the loopback socket's buffers and the transport's hold."""


async def metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match is not None, name
    return float(match.group(1))


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_stream_whose_reader_reads_nothing_is_counted_when_cut_off(
    start_server: ServerFactory, launch: str
) -> None:
    # A queue large enough never to overflow here: the send timeout is what cuts the reader off.
    server = start_server(
        launch=launch, sse_send_timeout=1, queue_max_events=10_000, queue_max_bytes=64 * 2**20
    )
    channel = "public:reads-nothing"
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", server.port))
    stalled.sendall(f"GET /api/channels/{channel}/stream HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    open_sse = 'fourcast_open_connections{transport="sse"}'
    cut_off = 'fourcast_slow_readers_cut_off_total{transport="sse"}'
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers=server.service_headers, timeout=10
        ) as client:

            async def streams(count: int) -> bool:
                return await metric(client, open_sse) == count

            await eventually(lambda: streams(1))
            for n in range(MOST_EVENTS):
                response = await client.post(
                    f"/api/channels/{channel}/events", json={"type": "big", "data": [n, PAD]}
                )
                assert response.status_code == 201
                if n % 10 == 9 and await streams(0):
                    break  # the stream has ended
            await eventually(lambda: streams(0), timeout=30)
            assert await metric(client, cut_off) == 1
    finally:
        stalled.close()
    assert "cut off a slow reader (SendTimeout)" in server.log()


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_stream_cut_off_closes_its_socket_at_once(
    start_server: ServerFactory, launch: str
) -> None:
    # The socket's own stall bound (`http_send_timeout`) is far off: only the cut-off can close
    # the socket within the test's bounds.
    server = start_server(
        launch=launch,
        http_send_timeout=600,
        sse_send_timeout=1,
        queue_max_events=10_000,
        queue_max_bytes=64 * 2**20,
    )
    channel = "public:cut-off-socket"
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", server.port))
    stalled.sendall(f"GET /api/channels/{channel}/stream HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    open_sse = 'fourcast_open_connections{transport="sse"}'
    cut_off = 'fourcast_slow_readers_cut_off_total{transport="sse"}'
    try:
        # One connection of its own: with the stalled one, the server holds two sockets.
        async with httpx.AsyncClient(
            base_url=server.url,
            headers=server.service_headers,
            timeout=10,
            limits=httpx.Limits(max_connections=1),
        ) as client:
            await eventually(lambda: is_(client, open_sse, 1))
            assert await metric(client, "fourcast_open_sockets") == 2
            for n in range(MOST_EVENTS):
                response = await client.post(
                    f"/api/channels/{channel}/events", json={"type": "big", "data": [n, PAD]}
                )
                assert response.status_code == 201
                if n % 10 == 9 and await is_(client, cut_off, 1):
                    break
            await eventually(lambda: is_(client, cut_off, 1), timeout=30)
            # Closed now, not once its buffered bytes have waited out `http_send_timeout`.
            await eventually(lambda: is_(client, "fourcast_open_sockets", 1), timeout=20)
    finally:
        stalled.close()


async def is_(client: httpx.AsyncClient, name: str, value: float) -> bool:
    return await metric(client, name) == value


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_stream_that_overflows_while_a_send_waits_is_cut_off_at_the_overflow(
    start_server: ServerFactory, launch: str
) -> None:
    # Its writer waits in a send the peer never lets finish, and both send bounds are far off:
    # only the overflow itself can cut the reader off within the test's bounds.
    server = start_server(
        launch=launch,
        http_send_timeout=600,
        sse_send_timeout=600,
        queue_max_events=20,
    )
    channel = "public:overflow-in-send"
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", server.port))
    stalled.sendall(f"GET /api/channels/{channel}/stream HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    open_sse = 'fourcast_open_connections{transport="sse"}'
    cut_off = 'fourcast_slow_readers_cut_off_total{transport="sse"}'
    try:
        async with httpx.AsyncClient(
            base_url=server.url,
            headers=server.service_headers,
            timeout=10,
            limits=httpx.Limits(max_connections=1),
        ) as client:
            await eventually(lambda: is_(client, open_sse, 1))
            for n in range(MOST_EVENTS):
                response = await client.post(
                    f"/api/channels/{channel}/events", json={"type": "big", "data": [n, PAD]}
                )
                assert response.status_code == 201
                if n % 10 == 9 and await is_(client, cut_off, 1):
                    break
            await eventually(lambda: is_(client, cut_off, 1), timeout=30)
            await eventually(lambda: is_(client, open_sse, 0), timeout=20)
            await eventually(lambda: is_(client, "fourcast_open_sockets", 1), timeout=20)
            assert await metric(client, cut_off) == 1  # counted once
    finally:
        stalled.close()
    assert "cut off a slow reader (SlowReader)" in server.log()
