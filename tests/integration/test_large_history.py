"""A reader resuming over more history than its outbox holds in bytes (1 MiB by default): the
catch-up paces itself to the reader on both bounds, events and bytes. A page of 500 events of
a few KiB each used to overflow the outbox at once: the reader was cut off (4008, or the SSE
stream ended) before it was sent anything, and so again at every resume."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.clients import make_reader
from tests.fixtures.server import ServerFactory

EVENTS = 600
SIZE = 2_500  # 1.5 MB of history in all, chat-sized events


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
@pytest.mark.parametrize("transport", ["websocket", "sse"])
async def test_a_resume_over_more_history_than_the_outbox_holds_gets_all_of_it(
    start_server: ServerFactory, launch: str, transport: str
) -> None:
    server = start_server(launch=launch)
    channel = f"public:history-{transport}"
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

        async def publish(n: int) -> None:
            async with limit:
                published = await client.post(
                    f"/api/channels/{channel}/events",
                    json={"type": "t", "data": {"n": n, "text": "x" * SIZE}},
                    headers=server.service_headers,
                )
                assert published.status_code == 201, published.text

        await asyncio.gather(*(publish(n) for n in range(EVENTS)))
    reader = await make_reader(transport, server.url, channel, after="0").start()
    try:
        await reader.wait_for(EVENTS, timeout=60)
        assert len(reader.durable) == EVENTS
        assert not reader.ended.is_set(), reader.closed_code  # never cut off
        assert [int(e["id"]) for e in reader.durable] == list(range(1, EVENTS + 1))
    finally:
        await reader.stop()
