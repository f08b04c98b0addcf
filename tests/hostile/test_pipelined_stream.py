"""An SSE stream with a request pipelined behind it, under plain uvicorn: when its client leaves,
the stream ends and gives back its slot, quietly (uvicorn tells only the request behind it)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.clients import eventually
from tests.fixtures.server import ServerFactory


async def test_a_stream_with_a_request_pipelined_behind_it_ends_when_its_client_leaves(
    start_server: ServerFactory,
) -> None:
    server = start_server(launch="uvicorn", sse_keepalive=1)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    # The stream and a second request in one write: the connection is not adopted by fourcast's
    # protocol (a next request has begun), so the stream runs on uvicorn's own cycle.
    await _stream_with_a_request_behind_it(reader, writer)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

        async def held() -> float:
            return await _metric(client, "fourcast_connections_held ")

        async def released() -> bool:
            return await held() == 0

        assert await held() == 1
        writer.close()
        await eventually(released, timeout=15)
    assert "Exception in ASGI application" not in server.log()
    assert "without completing response" not in server.log()


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_stream_and_a_request_behind_it_in_one_read_end_soon_after_their_client(
    start_server: ServerFactory, launch: str
) -> None:
    # fourcast's protocol (plain uvicorn's once adopted by a first request): the stream has not
    # run yet when the request behind it is parsed, and must still be watched for its client
    # leaving (app/server/hangups.py) rather than wait for a keepalive to fail to write.
    server = start_server(launch=launch, sse_keepalive=300)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    if launch == "uvicorn":
        writer.write(b"GET /api/channels/public:piped/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split()[0]))
    await _stream_with_a_request_behind_it(reader, writer)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

        async def open_streams() -> float:
            return await _metric(client, 'fourcast_open_connections{transport="sse"} ')

        async def ended() -> bool:
            return await open_streams() == 0

        assert await open_streams() == 1
        writer.close()
        # Within the hang-up sweep's seconds, not the 300 s of a keepalive.
        await eventually(ended, timeout=30)
    assert "Exception in ASGI application" not in server.log()


async def _metric(client: httpx.AsyncClient, sample: str) -> float:
    """The value of the /metrics line that starts with `sample` (its name and labels)."""
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(sample):
            return float(line.split()[-1])
    raise AssertionError(f"no {sample.strip()} in /metrics")


async def _stream_with_a_request_behind_it(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """A stream's request and another one after it, in one write; the stream answers 200."""
    writer.write(
        b"GET /api/channels/public:piped/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
