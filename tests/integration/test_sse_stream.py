"""An SSE stream served in one task: disconnects, keepalives, and the fallback under other servers.

Under `python -m app` a stream has no task listening for the client leaving: the server's
`fourcast.body` extension reports the lost connection, which ends the stream. Under any other
server a second task waits for `http.disconnect` (app/web/sse.py); both must notice a client
leaving at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings
from tests.fixtures.server import ServerFactory, free_port
from tests.rawclients import RawSse


async def read_until(stream: RawSse, marker: bytes, timeout: float) -> bytes:
    """Raw bytes of the stream up to and including `marker`."""
    assert stream.reader is not None
    seen = b""
    async with asyncio.timeout(timeout):
        while marker not in seen:
            chunk = await stream.reader.read(4096)
            assert chunk, f"stream ended before {marker!r}: {seen!r}"
            seen += chunk
    return seen


async def open_stream(port: int, channel: str) -> RawSse:
    stream = RawSse("127.0.0.1", port, channel)
    await stream.connect()
    await stream.read_headers()
    return stream


async def assert_cap_released(url: str, port: int, channel: str) -> None:
    """With a cap of one connection per address, a new stream is let in only once the last one
    was released; it is asked for at once, so the release must not wait for a timeout."""
    async with asyncio.timeout(2):
        while True:
            again = await open_stream(port, channel)
            if again.status == 200:
                await read_until(again, b"retry:", 5)
                again.close()
                return
            assert again.status == 429, again.status
            again.close()
            await asyncio.sleep(0.05)


async def test_a_client_leaving_is_noticed_at_once(start_server: ServerFactory) -> None:
    server = start_server(max_connections_per_ip=1, sse_keepalive=60)
    channel = "public:leaving"
    first = await open_stream(server.port, channel)
    assert first.status == 200
    await read_until(first, b"retry:", 5)
    refused = await open_stream(server.port, channel)
    assert refused.status == 429  # the cap holds while the first stream is open
    refused.close()
    first.close()
    # No keepalive is due for a minute and nothing is published: only the disconnect can end it.
    await assert_cap_released(server.url, server.port, channel)
    async with httpx.AsyncClient(base_url=server.url) as client:
        metrics = (await client.get("/metrics")).text
    assert 'fourcast_open_connections{transport="sse"} 0.0' in metrics, metrics


async def test_an_idle_stream_gets_keepalive_comments(start_server: ServerFactory) -> None:
    server = start_server(sse_keepalive=0.3)
    stream = await open_stream(server.port, "public:quiet")
    seen = await read_until(stream, b": keepalive", 5)
    seen += await read_until(stream, b": keepalive", 5)  # and again, while it stays idle
    assert b"data:" not in seen
    stream.close()


@contextlib.asynccontextmanager
async def in_process(
    tmp_path: Path, http: str, **settings: object
) -> AsyncIterator[tuple[int, FastAPI]]:
    """The app served by uvicorn in this process, so a test can look at its hub."""
    app = create_app(Settings(data_dir=tmp_path, secret_key="s" * 48, **settings))  # type: ignore[arg-type]
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=http, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event to wait for
            await asyncio.sleep(0.02)
        yield port, app
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


@contextlib.asynccontextmanager
async def plain_uvicorn(tmp_path: Path, **settings: object) -> AsyncIterator[int]:
    """The app under stock uvicorn (h11): no fourcast extensions, a task waiting for the disconnect."""
    async with in_process(tmp_path, "h11", **settings) as (port, _):
        yield port


async def test_without_the_extension_streams_still_notice_leaving_and_keep_alive(
    tmp_path: Path,
) -> None:
    async with plain_uvicorn(tmp_path, max_connections_per_ip=1, sse_keepalive=0.3) as port:
        url = f"http://127.0.0.1:{port}"
        first = await open_stream(port, "public:plain")
        assert first.status == 200
        await read_until(first, b": keepalive", 5)
        first.close()
        await assert_cap_released(url, port, "public:plain")


async def test_stream_headers_and_errors_carry_the_security_headers_once(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        async with client.stream("GET", "/api/channels/public:headers/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers.get_list("x-content-type-options") == ["nosniff"]
            assert response.headers.get_list("referrer-policy") == ["no-referrer"]
            assert response.headers["cache-control"] == "no-store"
        # Refused before the stream starts: the error body, with the same headers.
        refused = await client.get("/api/channels/room:secret/stream")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        assert refused.headers.get_list("x-content-type-options") == ["nosniff"]
        assert refused.headers.get_list("referrer-policy") == ["no-referrer"]
        bad = await client.get("/api/channels/public:x/stream?after=nope")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_head_takes_no_connection_slot(start_server: ServerFactory) -> None:
    server = start_server(max_connections_per_ip=1)
    async with httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(3):
            head = await client.head("/api/channels/public:head/stream")
            assert head.status_code == 200
            assert head.headers["content-type"].startswith("text/event-stream")
    # The one slot is still free for a real stream.
    stream = await open_stream(server.port, "public:head")
    assert stream.status == 200
    await read_until(stream, b"retry:", 5)
    stream.close()


async def test_a_stream_ended_during_catch_up_leaves_no_subscription(tmp_path: Path) -> None:
    """A stream whose client leaves while its catch-up is still copying history (paced to a
    small queue, so it waits for room) ends beside its subscribe task: the subscription must
    still be removed from the hub."""
    key = "k" * 32
    async with in_process(
        tmp_path,
        "app.server.quick:QuickHttpToolsProtocol",
        queue_max_bytes=4096,
        max_event_bytes=3072,  # the most a queue of 4096 bytes takes (app/settings/checks.py)
        api_keys={"svc": key},
    ) as (port, app):
        channel = "public:cut-off"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(5):
                published = await client.post(
                    f"/api/channels/{channel}/events",
                    json={"type": "t", "data": "x" * 2000},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert published.status_code == 201
        hub = app.state.services.bus.hub
        for _ in range(3):
            stream = RawSse("127.0.0.1", port, channel, after="0")
            await stream.connect()
            await stream.read_headers()
            assert stream.reader is not None
            await stream.reader.read(1)  # the stream has begun; its client leaves
            stream.close()
        async with asyncio.timeout(5):
            while hub.subscriber_count(channel):  # noqa: ASYNC110 - in-process state, no event
                await asyncio.sleep(0.01)
