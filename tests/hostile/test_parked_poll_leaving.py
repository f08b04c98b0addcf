"""A client leaving a parked long poll, on every launch path (under plain uvicorn, on a connection
the app has adopted): half-closing it, or going with a request pipelined behind it, must let go
of the poll's place and of the connection."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.clients import eventually, parked_polls, publish_many
from tests.fixtures.server import ServerFactory
from tests.hostile.adopted import open_adopted, read_until


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn --http --ws", "uvicorn"])
@pytest.mark.parametrize("request_first", [True, False], ids=["first request", "after another"])
async def test_an_anonymous_long_poll_whose_client_half_closes_lets_go_of_its_place(
    start_server: ServerFactory, launch: str, request_first: bool
) -> None:
    """Also on a connection's first request under plain uvicorn, which its ASGI path serves
    (the connection is adopted during it): the client's FIN ends the poll and its cap slot."""
    server = start_server(launch=launch, max_connections_per_ip=1)
    channel = "public:half-closed"
    head = (await publish_many(server.url, channel, 1, server.service_headers))[0]["id"]
    if request_first:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    else:
        reader, writer = await open_adopted(server)
    poll = f"GET /api/channels/{channel}/events?after={head}&wait=60 HTTP/1.1\r\nHost: x\r\n\r\n"
    writer.write(poll.encode())

    async def parked(count: int) -> bool:
        return await parked_polls(server.url) == count

    assert await eventually(lambda: parked(1))
    writer.write_eof()
    assert await eventually(lambda: parked(0))
    await read_until(reader, b"\r\n\r\n")  # the server closes its side too
    writer.close()
    # The address's one place is free again: another long poll is taken, not refused (429).
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        taken = asyncio.ensure_future(client.get(poll.split()[1]))
        assert await eventually(lambda: parked(1))
        taken.cancel()


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn --http --ws", "uvicorn"])
@pytest.mark.parametrize("behind", ["healthz", "poll"])
async def test_a_long_poll_with_a_request_pipelined_behind_it_lets_go_when_its_client_leaves(
    start_server: ServerFactory, launch: str, behind: str
) -> None:
    """uvicorn stops reading a connection while a pipelined request waits its turn, so the
    client's FIN sits unread behind it: the server must still see the client go (at the next
    sweep, a second on, not at the end of the 60 s wait) and free the poll's place."""
    server = start_server(launch=launch, max_connections_per_ip=1)
    channel = "public:pipelined-leaver"
    head = (await publish_many(server.url, channel, 1, server.service_headers))[0]["id"]
    poll = f"GET /api/channels/{channel}/events?after={head}&wait=60 HTTP/1.1\r\nHost: x\r\n\r\n"
    queued = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" if behind == "healthz" else poll.encode()
    _, writer = await open_adopted(server)
    writer.write(poll.encode() + queued)

    async def parked(count: int) -> bool:
        return await parked_polls(server.url) == count

    assert await eventually(lambda: parked(1))
    writer.close()
    # A sweep a second: 10 s leaves room for a busy machine; the poll's own wait is 60 s.
    assert await eventually(lambda: parked(0), timeout=10)

    async def counted() -> bool:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{server.url}/metrics")).text
        return 'fourcast_sockets_closed_early_total{reason="peer_gone"} 1.0' in text

    assert await eventually(counted)
    # The address's one place is free again: another long poll is taken, not refused (429).
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        taken = asyncio.ensure_future(client.get(poll.split()[1]))
        assert await eventually(lambda: parked(1))
        taken.cancel()
