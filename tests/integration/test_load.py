"""Bounded load on one process: many subscribers, and what happens to a reader that stalls."""

from __future__ import annotations

import asyncio
import base64
import os
import resource

import httpx
import orjson
import pytest
import websockets

from tests.clients import WsReader, publish_many
from tests.fixtures.server import ServerFactory, ServerProcess
from tests.rawclients import RawSse

SUBSCRIBERS = 1000
BURST = 100


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


BIG_EVENTS = 600
"""600 events of 32 KiB: 19 MiB, more than the kernel's socket buffers can hide (and random, so
that permessage-deflate, which plain uvicorn negotiates, cannot shrink them much)."""


async def publish_big(server: ServerProcess, channel: str, count: int) -> None:
    """Events numbered from 0, each padded to 32 KiB, published one after another."""
    async with httpx.AsyncClient(base_url=server.url, headers=server.service_headers) as client:
        for n in range(count):
            pad = base64.b64encode(os.urandom(24 * 1024)).decode()
            response = await client.post(
                f"/api/channels/{channel}/events",
                json={"type": "big", "data": {"n": n, "pad": pad}},
            )
            assert response.status_code == 201


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def test_1000_websocket_and_1000_sse_subscribers_get_a_burst_without_loss(
    start_server: ServerFactory,
) -> None:
    raise_fd_limit(2 * SUBSCRIBERS + 500)
    server = start_server(max_connections_per_ip=10 * SUBSCRIBERS)
    channel = "public:crowd"
    sockets = []
    for start in range(0, SUBSCRIBERS, 100):

        async def open_one() -> websockets.ClientConnection:
            ws = await websockets.connect(server.ws_url, subprotocols=["fourcast.v1"])  # type: ignore[list-item]
            await ws.recv()  # welcome
            await ws.send(orjson.dumps({"op": "subscribe", "channel": channel, "ref": 1}).decode())
            assert orjson.loads(await ws.recv())["op"] == "ack"
            return ws

        sockets += await asyncio.gather(*(open_one() for _ in range(start, start + 100)))
    streams = [RawSse("127.0.0.1", server.port, channel) for _ in range(SUBSCRIBERS)]
    for stream in streams:
        await stream.connect()
    for stream in streams:
        await stream.read_headers()
        assert stream.status == 200

    published = await publish_many(
        server.url, channel, BURST, server.service_headers, concurrency=4
    )
    expected = sorted(e["id"] for e in published)

    async def ws_ids(ws: websockets.ClientConnection) -> list[str]:
        ids = []
        while len(ids) < BURST:
            message = orjson.loads(await ws.recv())
            if message["op"] == "event":
                ids.append(message["id"])
        return ids

    ws_results = await asyncio.wait_for(asyncio.gather(*(ws_ids(ws) for ws in sockets)), 60)
    await asyncio.wait_for(asyncio.gather(*(s.read_events(BURST) for s in streams)), 60)
    for ids in ws_results:
        assert sorted(ids) == expected and len(set(ids)) == BURST
    for stream in streams:
        assert sorted(e["id"] for e in stream.events) == expected
    # Every subscriber saw the same order: the server's.
    orders = {tuple(ids) for ids in ws_results} | {
        tuple(e["id"] for e in s.events) for s in streams
    }
    assert len(orders) == 1
    for ws in sockets:
        await ws.close()
    for stream in streams:
        stream.close()


@pytest.mark.parametrize(
    ("launch", "compression"),
    [("python -m app", None), ("uvicorn", None), ("uvicorn", "deflate")],
    ids=["python -m app", "uvicorn", "uvicorn, permessage-deflate"],
)
async def test_a_stalled_websocket_reader_is_cut_off_while_others_keep_pace(
    start_server: ServerFactory, launch: str, compression: str | None
) -> None:
    """On both launch paths. Under plain uvicorn an uncompressed socket is written through
    fourcast's frames extension (adopted), a compressed one through ASGI messages."""
    server = start_server(
        queue_max_events=50,
        queue_max_bytes=512 * 1024,
        ws_send_timeout=3,
        history_size=10,
        launch=launch,
    )
    channel = "public:stall"
    steady = await WsReader(server.url, channel).start()
    stalled = await websockets.connect(
        server.ws_url,
        subprotocols=["fourcast.v1"],  # type: ignore[list-item]
        max_queue=1,
        compression=compression,
    )
    await stalled.recv()
    await stalled.send(orjson.dumps({"op": "subscribe", "channel": channel, "ref": 1}).decode())
    baseline = rss_kib(server.process.pid)  # type: ignore[union-attr]
    count = BIG_EVENTS  # 19 MiB that must not pile up for the stalled reader
    await publish_big(server, channel, count)
    await steady.wait_for(count, timeout=60)
    assert [e["data"]["n"] for e in steady.durable] == list(range(count))
    grown_mib = (rss_kib(server.process.pid) - baseline) / 1024  # type: ignore[union-attr]
    assert grown_mib < 12, f"server grew {grown_mib:.1f} MiB"
    # The stalled reader, once it reads, finds a prefix of the events and then close 4008.
    received = 0
    try:
        while True:
            message = orjson.loads(await asyncio.wait_for(stalled.recv(), 30))
            if message["op"] == "event":
                assert message["data"]["n"] == received
                received += 1
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 4008, closed
    assert received < count
    await steady.stop()


async def test_a_stalled_sse_reader_is_cut_off_while_others_keep_pace(
    start_server: ServerFactory,
) -> None:
    server = start_server(queue_max_events=50, queue_max_bytes=512 * 1024, sse_send_timeout=2)
    channel = "public:stall-sse"
    steady = RawSse("127.0.0.1", server.port, channel)
    await steady.connect()
    await steady.read_headers()
    stalled = RawSse("127.0.0.1", server.port, channel)
    await stalled.connect()
    await stalled.read_headers()
    count = BIG_EVENTS
    reading = asyncio.create_task(steady.read_events(count))
    await publish_big(server, channel, count)
    await asyncio.wait_for(reading, 60)
    assert [e["data"]["n"] for e in steady.events] == list(range(count))
    # The stalled stream was ended by the server: reading it now reaches the end, short of all.
    await stalled.read_to_end(timeout=30)
    assert stalled.ended
    numbers = [e["data"]["n"] for e in stalled.events]
    assert numbers == list(range(len(numbers))) and len(numbers) < count
    steady.close()
    stalled.close()
