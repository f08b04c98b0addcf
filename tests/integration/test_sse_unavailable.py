"""A stream that cannot subscribe (the event log unavailable, a cursor's reset over the read
budget) ends at once, having told its client the reconnection delay (`retry:`), with a cursor or
without, and never that it was live (`: connected`) (docs/protocol.md, SSE)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fixtures.redis import RedisServer
from tests.fixtures.server import ServerFactory


async def whole_stream(port: int, target: str) -> bytes:
    """The body of a stream the server ends by itself (chunked framing and all)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200"), head
        return await asyncio.wait_for(reader.readuntil(b"\r\n0\r\n\r\n"), 10)
    finally:
        writer.close()


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_stream_opened_while_redis_is_down_ends_with_the_retry_delay(
    start_server: ServerFactory, redis_url: str, redis_server: RedisServer, launch: str
) -> None:
    server = start_server(launch=launch, redis_url=redis_url, sse_retry_ms=4321)
    await asyncio.to_thread(redis_server.stop)
    for query in ("", "?after=0"):
        body = await whole_stream(server.port, f"/api/channels/public:away/stream{query}")
        assert b"retry: 4321\n\n" in body, (query, body)
        # Never told it is live: it was not.
        assert b": connected" not in body, (query, body)
        assert b"data:" not in body


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_stream_whose_reset_is_over_the_read_budget_is_never_told_it_is_live(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch, read_all_burst=1, read_all_rate=0.001, sse_retry_ms=4321)
    channel = "public:budgeted"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        published = await client.post(
            f"/api/channels/{channel}/events",
            json={"type": "note", "data": {}},
            headers=server.service_headers,
        )
        assert published.status_code == 201
        # This address's one read from the start.
        assert (await client.get(f"/api/channels/{channel}/events?after=0")).status_code == 200
    # A cursor the channel never reached: read from the oldest event, which the budget refuses.
    body = await whole_stream(server.port, f"/api/channels/{channel}/stream?after=999")
    assert b"retry: 4321\n\n" in body, body
    assert b": connected" not in body, body
    assert b"data:" not in body
