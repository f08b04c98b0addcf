"""An SSE stream with a request pipelined behind it, under plain uvicorn: when its client leaves,
the stream ends and gives back its slot, quietly (uvicorn tells only the request behind it)."""

from __future__ import annotations

import asyncio

import httpx

from tests.clients import eventually
from tests.fixtures.server import ServerFactory


async def test_a_stream_with_a_request_pipelined_behind_it_ends_when_its_client_leaves(
    start_server: ServerFactory,
) -> None:
    server = start_server(launch="uvicorn", sse_keepalive=1)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    # The stream and a second request in one write: the connection is not adopted by fourcast's
    # protocol (a next request has begun), so the stream runs on uvicorn's own cycle.
    writer.write(
        b"GET /api/channels/public:piped/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

        async def held() -> float:
            for line in (await client.get("/metrics")).text.splitlines():
                if line.startswith("fourcast_connections_held "):
                    return float(line.split()[1])
            raise AssertionError("no fourcast_connections_held")

        async def released() -> bool:
            return await held() == 0

        assert await held() == 1
        writer.close()
        await eventually(released, timeout=15)
    assert "Exception in ASGI application" not in server.log()
    assert "without completing response" not in server.log()
