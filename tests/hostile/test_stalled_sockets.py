"""A WebSocket client that stops reading for good, with bytes still on their way to it: once it
is cut off (4008) and its keepalive runs out, the server must let go of the socket. Closing a
transport waits for its buffer to drain, which such a client never does: the socket and its
buffers, and the app's place on the connection caps while it waited on a `receive` nothing
would end, were held for as long as the client kept its TCP connection open.

Each wait is for observable state (the server's gauges); its bound only bounds a failure.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from tests.clients import eventually
from tests.fixtures.server import ServerFactory, ServerProcess
from tests.hostile.test_signed_out_sockets import frame, open_socket

BIG = {"type": "t", "data": "x" * 60_000}


async def metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def cut_off(server: ServerProcess) -> None:
    """Publish big events to the socket's channel until the server cuts its reader off."""
    cut = 'fourcast_slow_readers_cut_off_total{transport="websocket"}'
    flood = "/api/channels/public:flood/events"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for _ in range(60):
            published = await asyncio.gather(
                *(client.post(flood, json=BIG, headers=server.service_headers) for _ in range(8))
            )
            assert {answer.status_code for answer in published} == {201}
            if await metric(client, cut) >= 1:
                return
    raise AssertionError("the reader was never cut off")


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_reader_cut_off_that_never_reads_again_is_let_go(
    start_server: ServerFactory, launch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Plain uvicorn pings at its own pace: the same one, given through its own variables.
    monkeypatch.setenv("UVICORN_WS_PING_INTERVAL", "3")
    monkeypatch.setenv("UVICORN_WS_PING_TIMEOUT", "3")
    server = start_server(launch=launch, heartbeat=3, heartbeat_grace=3, ws_send_timeout=1)
    raw = await asyncio.to_thread(open_socket, server.port, "")
    try:
        raw.sendall(frame({"op": "subscribe", "channel": "public:flood", "ref": 1}))
        await cut_off(server)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

            async def let_go() -> bool:
                # The scrape's own connection is the one socket left open.
                sockets = await metric(client, "fourcast_open_sockets")
                websockets = await metric(
                    client, 'fourcast_open_connections{transport="websocket"}'
                )
                return sockets == 1 and websockets == 0

            await eventually(let_go, timeout=30)
    finally:
        raw.close()


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_reader_that_never_reads_is_let_go_with_no_pings(
    start_server: ServerFactory, launch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No keepalive to visit it: plain uvicorn pings not at all, fourcast's own protocol not
    # within the test (its heartbeat cannot be turned off). Its writing staying paused lets it
    # go, before the send timeout has even cut it off.
    monkeypatch.setenv("UVICORN_WS_PING_INTERVAL", "0")
    server = start_server(launch=launch, heartbeat=3600, ws_stall_timeout=2)
    raw = await asyncio.to_thread(open_socket, server.port, "")
    flood = "/api/channels/public:flood/events"
    try:
        raw.sendall(frame({"op": "subscribe", "channel": "public:flood", "ref": 1}))
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

            async def let_go() -> bool:
                # The scrape's own connection is the one socket left open.
                sockets = await metric(client, "fourcast_open_sockets")
                websockets = await metric(
                    client, 'fourcast_open_connections{transport="websocket"}'
                )
                return sockets == 1 and websockets == 0

            for _ in range(60):
                published = await asyncio.gather(
                    *(
                        client.post(flood, json=BIG, headers=server.service_headers)
                        for _ in range(8)
                    )
                )
                assert {answer.status_code for answer in published} == {201}
                if await let_go():
                    break
            await eventually(let_go, timeout=30)
    finally:
        raw.close()


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_reader_that_overflows_while_a_batch_waits_is_cut_off_at_the_overflow(
    start_server: ServerFactory, launch: str
) -> None:
    # Its writer waits on a batch the peer never takes, and the send timeout is far off: only
    # the overflow itself can cut the reader off within the test's bounds.
    server = start_server(launch=launch, ws_send_timeout=600, queue_max_events=20)
    raw = await asyncio.to_thread(open_socket, server.port, "")
    try:
        raw.sendall(frame({"op": "subscribe", "channel": "public:flood", "ref": 1}))
        await cut_off(server)
    finally:
        raw.close()
