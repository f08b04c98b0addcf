"""fourcast.client when the server says "later": a refused subscribe is retried after its
Retry-After on the same transport (a WebSocket's `error` op as an SSE stream's 429), `auto`
waits out a 429 instead of stepping down, and a waited poll the server did not hold is not
repeated in a tight loop.

Backoff and poll waits go through injected sleeps that record them: no test waits one out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from app.client import Client, Status, Subscription
from app.client.transports.base import Cursor, Options
from app.client.transports.poll import PollTransport
from tests.fixtures.server import ServerFactory

WAIT = 20.0  # bounds a failure only


class Sleeps:
    """An injected sleep: records each delay, waits only a loop step."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


async def stop(pending: asyncio.Future[object]) -> None:
    """Cancels a pending `anext`, and waits until the iteration has let go."""
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)


async def until_live(subscription: Subscription) -> asyncio.Future[object]:
    """Starts iterating `subscription` and returns once it is live (the iteration goes on)."""
    live = asyncio.Event()
    subscription.on_status = lambda s: live.set() if s.state == "live" else None
    pending = asyncio.ensure_future(anext(aiter(subscription)))
    await asyncio.wait_for(live.wait(), WAIT)
    return pending


async def first_retry(subscription: Subscription) -> tuple[list[Status], Status]:
    """Iterates `subscription` until it backs off once; returns its statuses up to that one,
    and that one."""
    statuses: list[Status] = []
    retrying = asyncio.Event()

    def status(change: Status) -> None:
        if not retrying.is_set():
            statuses.append(change)
        if change.state == "retrying" and change.delay is not None:
            retrying.set()

    subscription.on_status = status
    pending = asyncio.ensure_future(anext(aiter(subscription)))
    waiting = asyncio.ensure_future(retrying.wait())
    done, _ = await asyncio.wait({pending, waiting}, timeout=WAIT, return_when="FIRST_COMPLETED")
    waiting.cancel()
    if pending in done:
        pending.result()  # raises what ended the subscription
        raise AssertionError("the subscription delivered an event; nothing was published")
    await stop(pending)
    assert retrying.is_set(), statuses
    return statuses, statuses[-1]


@pytest.mark.parametrize("transport", ["websocket", "sse"])  # streams spend the budget
async def test_a_subscribe_over_its_budget_is_retried_after_retry_after(
    start_server: ServerFactory, transport: str
) -> None:
    server = start_server(subscribe_burst=1, subscribe_rate=0.01)
    sleeps = Sleeps()
    async with Client(server.url, sleep=sleeps) as client:
        await client.sign_in("budgeted")
        first = client.subscribe("room:budget", transport="websocket")  # spends the budget
        holding = await until_live(first)
        second = client.subscribe("room:budget", transport=transport)
        statuses, retry = await first_retry(second)
        await stop(holding)
        await second.aclose()
        await first.aclose()
    assert retry.transport == transport
    assert retry.delay is not None and retry.delay >= 1, statuses
    assert sleeps.delays and sleeps.delays[0] >= 1


async def test_auto_waits_out_a_429_on_the_same_transport_instead_of_stepping_down(
    start_server: ServerFactory,
) -> None:
    server = start_server(max_connections_per_user=1)
    sleeps = Sleeps()
    async with Client(server.url, sleep=sleeps) as client:
        await client.sign_in("one-slot")
        first = client.subscribe("room:slot", transport="websocket")  # takes the one slot
        holding = await until_live(first)
        second = client.subscribe("room:slot", transport="auto")
        statuses, retry = await first_retry(second)
        await stop(holding)
        await second.aclose()
        await first.aclose()
    tried = [s.transport for s in statuses if s.state == "connecting"]
    assert tried == ["websocket"], statuses
    assert retry.transport == "websocket"
    assert retry.delay is not None and retry.delay >= 10, statuses


@pytest.fixture
async def unheld_polls() -> AsyncIterator[tuple[str, list[str]]]:
    """A real HTTP server that answers every poll at once with no events, whatever its `wait`
    (what a proxy that ignores `wait` does); yields its URL and the request lines it got."""
    requests: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = b'{"events":[],"next":"5","reset":false}'
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                requests.append(head.split(b"\r\n", 1)[0].decode())
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", requests


async def test_a_waited_poll_answered_at_once_with_nothing_is_not_repeated_at_once(
    unheld_polls: tuple[str, list[str]],
) -> None:
    url, requests = unheld_polls
    sleeps = Sleeps()
    async with httpx.AsyncClient() as http:
        options = Options(url, {}, http, poll_interval=1.0, long_poll_wait=25, sleep=sleeps)
        stream = PollTransport(options, long=True).stream("public:x", "5")
        cursors = 0
        async for item in stream:
            if isinstance(item, Cursor):
                cursors += 1
                if cursors == 4:
                    break
        await stream.aclose()
    waited = [r for r in requests if "wait=25" in r]
    assert len(waited) == 3, requests
    # Each waited poll answered at once was followed by a pause of a poll interval (the third's
    # is still ahead when its cursor is taken).
    assert sleeps.delays == [1.0, 1.0]
