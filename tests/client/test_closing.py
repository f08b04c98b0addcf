"""Closing: `subscription.aclose()` from another task than the one iterating it, and
`client.close()` with subscriptions still open (iterated elsewhere, or left with `break`).

Each test waits for observable state (a status, the server's connection gauge), never a delay.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from app.client import TRANSPORTS, Client, Event, Subscription
from tests.fixtures.server import API_KEY, ServerProcess

WAIT = 20.0  # bounds a failure only


def open_connections(server: ServerProcess, transport: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    found = re.search(
        rf'^fourcast_open_connections\{{transport="{transport}"\}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


async def until_gauge(server: ServerProcess, transport: str, value: float) -> None:
    """Waits until the server counts `value` open connections of `transport`."""
    async with asyncio.timeout(WAIT):
        while open_connections(server, transport) != value:  # noqa: ASYNC110 - a server gauge
            await asyncio.sleep(0.02)


class Reader:
    """A task iterating a subscription to its end; `live` is set once it is live, `got` at
    each event."""

    def __init__(self, subscription: Subscription) -> None:
        self.live = asyncio.Event()
        self.got = asyncio.Event()
        self.events: list[Event] = []
        subscription.on_status = lambda s: self.live.set() if s.state == "live" else None
        self.task = asyncio.create_task(self._read(subscription))

    async def _read(self, subscription: Subscription) -> list[Event]:
        async for event in subscription:
            self.events.append(event)
            self.got.set()
        return self.events


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_aclose_from_another_task_ends_the_iteration_and_closes_the_connection(
    shared_server: ServerProcess, transport: str
) -> None:
    channel = f"public:aclose-{transport}"
    async with Client(shared_server.url, transport=transport, poll_interval=0.05) as client:
        subscription = client.subscribe(channel)
        reader = Reader(subscription)
        await asyncio.wait_for(reader.live.wait(), WAIT)
        async with Client(shared_server.url, api_key=API_KEY) as publisher:
            sent = await publisher.publish(channel, "n", {"n": 1})
        # Once aclose() returns the iteration has ended: the reader has nothing left to await.
        await asyncio.wait_for(subscription.aclose(), WAIT)
        received = await asyncio.wait_for(reader.task, WAIT)
        assert all(event == sent for event in received), received
        assert [event async for event in subscription] == []  # ended for good
        if transport in ("websocket", "sse"):
            await until_gauge(shared_server, transport, 0)


async def test_a_cancelled_reader_is_still_cancelled(shared_server: ServerProcess) -> None:
    """aclose() ends the iteration by cancelling the reader's wait; a cancel from anyone else
    must stay a cancel."""
    async with Client(shared_server.url, transport="websocket") as client:
        reader = Reader(client.subscribe("public:cancelled"))
        await asyncio.wait_for(reader.live.wait(), WAIT)
        reader.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader.task


@pytest.mark.parametrize("transport", ["websocket", "sse"])
async def test_client_close_closes_subscriptions_left_with_break_or_still_read(
    shared_server: ServerProcess, transport: str
) -> None:
    channel = f"public:close-{transport}"
    client = Client(shared_server.url, api_key=API_KEY, transport=transport)
    first = await client.publish(channel, "n", {"n": 1})
    await client.publish(channel, "n", {"n": 2})
    assert first is not None
    left = client.subscribe(channel, after=first.id)  # held here: no garbage collector to help
    async for _ in left:
        break
    reader = Reader(client.subscribe(channel, after=first.id))
    await asyncio.wait_for(reader.got.wait(), WAIT)
    await until_gauge(shared_server, transport, 2)
    await asyncio.wait_for(client.close(), WAIT)
    assert [e.data for e in await asyncio.wait_for(reader.task, WAIT)] == [{"n": 2}]
    await until_gauge(shared_server, transport, 0)
