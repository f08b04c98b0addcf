"""fourcast.client after a reset on a channel with nothing retained: it resumes from the cursor
the reset gives (SSE `id:`, WebSocket `next`), so a reconnect is not reset again."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.client import Client, Status
from tests.fixtures.server import ServerFactory

WAIT = 20.0  # bounds a failure only


@pytest.mark.parametrize("transport", ["sse", "websocket"])
async def test_a_reset_on_an_empty_channel_is_not_told_again_after_a_reconnect(
    start_server: ServerFactory, transport: str
) -> None:
    server = start_server()
    channel = "public:empty"
    reset, lives = asyncio.Event(), asyncio.Queue[Status]()
    async with Client(server.url, backoff_base=0.05, backoff_cap=0.2) as client:
        subscription = client.subscribe(
            channel,
            after="999999",  # never issued: a reset, and nothing retained to follow it
            transport=transport,
            on_reset=lambda _: reset.set(),
            on_status=lambda s: lives.put_nowait(s) if s.state == "live" else None,
        )
        pending = asyncio.ensure_future(anext(aiter(subscription)))
        await asyncio.wait_for(reset.wait(), WAIT)
        await asyncio.wait_for(lives.get(), WAIT)
        assert subscription.cursor == "0"

        # The connection drops (the server restarts); the client resumes, live again.
        server.terminate()
        server.start()
        await asyncio.wait_for(lives.get(), WAIT)
        # An event published now comes after anything the resume itself sends (a reset first).
        async with httpx.AsyncClient(base_url=server.url, headers=server.service_headers) as api:
            response = await api.post(
                f"/api/channels/{channel}/events", json={"type": "note", "data": {}}
            )
            assert response.status_code == 201, response.text
        event = await asyncio.wait_for(pending, WAIT)
        await subscription.aclose()
    assert event.id == response.json()["id"]
    assert subscription.resets == 1
