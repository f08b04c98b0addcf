"""SIGTERM drains: streams end cleanly, long polls return, nothing acknowledged is dropped."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import orjson
import pytest
import websockets

from tests.fixtures.server import API_KEY, ServerFactory
from tests.rawclients import RawSse


async def test_sigterm_closes_every_transport_cleanly_and_keeps_what_it_acknowledged(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    channel = "public:shutdown"
    ws = await websockets.connect(server.ws_url, subprotocols=["fourcast.v1"])  # type: ignore[list-item]
    await ws.recv()
    await ws.send(orjson.dumps({"op": "subscribe", "channel": channel, "ref": 1}).decode())
    sse = RawSse("127.0.0.1", server.port, channel)
    await sse.connect()
    await sse.read_headers()
    sse_reading = asyncio.create_task(sse.read_to_end(timeout=30))

    acknowledged: list[str] = []
    refused = 0
    stop = asyncio.Event()
    enough = asyncio.Event()

    async def publisher() -> None:
        nonlocal refused
        async with httpx.AsyncClient(base_url=server.url, headers=server.service_headers) as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = await client.post(
                        f"/api/channels/{channel}/events", json={"type": "t", "data": n}
                    )
                except httpx.TransportError:
                    refused += 1
                    await asyncio.sleep(0.01)
                    continue
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])
                    if len(acknowledged) >= 50:
                        enough.set()
                else:
                    assert response.status_code == 503, response.text
                    assert "Retry-After" in response.headers
                    refused += 1

    publishers = [asyncio.create_task(publisher()) for _ in range(4)]
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        head = (await client.get(f"/api/channels/{channel}/events")).json()["next"]
        quiet = "public:shutdown-quiet"
        quiet_head = (await client.get(f"/api/channels/{quiet}/events")).json()["next"]
        long_poll = asyncio.create_task(
            client.get(f"/api/channels/{quiet}/events", params={"after": quiet_head, "wait": 50})
        )
        await asyncio.wait_for(enough.wait(), 20)
        assert not long_poll.done()
        started = time.monotonic()
        exit_code = await asyncio.to_thread(server.terminate, 20)
        elapsed = time.monotonic() - started
        poll_response = await long_poll
    stop.set()
    await asyncio.gather(*publishers)

    # uvicorn re-raises the signal it caught once it has shut down gracefully.
    assert exit_code in (0, -signal.SIGTERM)
    assert elapsed < 10, elapsed
    assert poll_response.status_code == 200  # returned, not dropped
    assert poll_response.json()["events"] == []
    # WebSocket: told to reconnect (1012), after whatever events were in flight.
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 1012
    await sse_reading
    sse.close()
    await ws.close()
    assert sse.ended

    # Nothing acknowledged was dropped.
    restarted = start_server(port=server.port, data_dir=server.data_dir)
    async with httpx.AsyncClient(base_url=restarted.url) as client:
        kept = (
            await client.get(
                f"/api/channels/{channel}/events",
                params={"after": head.split("_")[0], "limit": 1000},
            )
        ).json()["events"]
    kept_ids = {e["id"] for e in kept}
    assert set(acknowledged) <= kept_ids
    assert len(acknowledged) >= 50


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn --timeout-graceful-shutdown 1"])
async def test_a_request_still_held_at_the_shutdown_timeout_gets_fourcasts_503(
    start_server: ServerFactory, launch: str
) -> None:
    # uvicorn cancels it at its timeout (python -m app: FOURCAST_DRAIN_TIMEOUT) and would
    # answer a plain-text 500; fourcast answers first, as it answers a publish while draining.
    server = start_server(launch=launch, drain_timeout=1)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /api/channels/public:held/events HTTP/1.1\r\nhost: test\r\n"
        b"authorization: Bearer " + API_KEY.encode() + b"\r\n"
        b"content-type: application/json\r\ncontent-length: 100\r\n"
        b"expect: 100-continue\r\n\r\n"
    )
    # The 100 Continue says the app is waiting for the body, which never comes whole.
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20) == (
        b"HTTP/1.1 100 Continue\r\n\r\n"
    )
    writer.write(b'{"type":')
    exit_code = await asyncio.to_thread(server.terminate, 20)
    answer = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    await writer.wait_closed()

    assert exit_code in (0, -signal.SIGTERM)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0] == "http/1.1 503 service unavailable", answer
    assert "content-type: application/json" in lines
    assert "retry-after: 2" in lines
    assert "connection: close" in lines
    error = orjson.loads(body)["error"]
    assert error["code"] == "unavailable"
    assert any(line == f"x-request-id: {error['request_id']}" for line in lines)
    assert "timeout graceful shutdown exceeded" not in server.log()  # nothing left to cancel
