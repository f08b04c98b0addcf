"""fourcast.client over SSE, given events whose JSON holds characters Python takes for line ends
(U+2028, U+2029, U+0085: JSON leaves them raw in a string) that SSE does not: delivered whole, on
both launch paths (test_units checks where lines end, wherever the chunks are cut)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.client import Client, Event, Status
from tests.fixtures.server import ServerFactory

WAIT = 20.0  # bounds a failure only
TEXTS = ["line\u2028separator", "paragraph\u2029separator", "next\x85line", "plain"]


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_an_event_holding_unicode_line_separators_is_delivered_whole(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch)
    channel = "public:separators"
    async with httpx.AsyncClient(base_url=server.url, headers=server.service_headers) as api:
        for text in TEXTS:
            response = await api.post(
                f"/api/channels/{channel}/events", json={"type": "note", "data": {"text": text}}
            )
            assert response.status_code == 201, response.text
    retried = asyncio.Event()

    def status(change: Status) -> None:
        if change.state == "retrying":
            retried.set()  # before the fix: "the stream sent something that is no event"

    async with Client(server.url, transport="sse") as client:
        subscription = client.subscribe(channel, after="0", on_status=status)

        async def take() -> list[Event]:
            return [await anext(aiter(subscription)) for _ in TEXTS]

        reading = asyncio.ensure_future(take())
        retrying = asyncio.ensure_future(retried.wait())
        await asyncio.wait({reading, retrying}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
        retrying.cancel()
        assert not retried.is_set() and reading.done()
        await subscription.aclose()
    assert [event.data["text"] for event in reading.result()] == TEXTS
