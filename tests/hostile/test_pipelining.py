"""Hostile use of one HTTP connection, on every launch path (under plain uvicorn, on a connection
the app has adopted): what a client pipelines behind a response still being written, and a
client leaving a parked long poll, must not leave the server holding memory, a cap slot or
state for a socket that is no longer an HTTP one."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from tests.clients import eventually, parked_polls, publish_many
from tests.fixtures.server import ServerFactory, ServerProcess
from tests.hostile.adopted import open_adopted, read_until

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
BOUND = 16
"""`max_open_sockets` (its smallest allowed value)."""


async def open_sockets(server: ServerProcess) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{server.url}/metrics")).text
    return float(text.split("\nfourcast_open_sockets ")[1].split()[0])


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn --http --ws", "uvicorn"])
async def test_an_upgrade_pipelined_behind_a_parked_long_poll_closes_the_connection(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch, max_open_sockets=BOUND)
    channel = "public:pipelined-upgrade"
    head = (await publish_many(server.url, channel, 1, server.service_headers))[0]["id"]
    reader, writer = await open_adopted(server)
    poll = f"GET /api/channels/{channel}/events?after={head}&wait=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    writer.write(poll.encode() + UPGRADE)
    # Until the poll's answer (written after the 101, inside the WebSocket's frames) or a close.
    sent = await read_until(reader, b"HTTP/1.1 200")
    writer.close()
    assert sent == b"", f"the server switched protocols with a poll unanswered: {sent!r}"

    async def released() -> bool:
        return await parked_polls(server.url) == 0

    assert await eventually(released)
    if launch == "uvicorn":
        return  # no socket bound under uvicorn's stock protocols (docs/operations.md)
    # Nothing of that connection is left for a newcomer to evict: with every socket busy
    # (SSE streams), one more gets the 503 the bound promises.

    async def only_the_probe_open() -> bool:
        return await open_sockets(server) == 1

    assert await eventually(only_the_probe_open)
    busy = []
    for _ in range(BOUND):
        stream_reader, stream_writer = await asyncio.open_connection("127.0.0.1", server.port)
        stream_writer.write(b"GET /api/channels/public:x/stream HTTP/1.1\r\nhost: x\r\n\r\n")
        answer = await asyncio.wait_for(stream_reader.readuntil(b"\r\n\r\n"), 10)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        busy.append(stream_writer)
    probe_reader, probe_writer = await asyncio.open_connection("127.0.0.1", server.port)
    probe_writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await read_until(probe_reader, b"\r\n\r\n")
    probe_writer.close()
    for stream_writer in busy:
        stream_writer.close()
    assert answer.startswith(b"HTTP/1.1 503"), answer


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn --http --ws", "uvicorn"])
async def test_pipelined_polls_never_read_are_cut_off_at_the_pipeline_bound(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch, http_max_pipelined=32)
    channel = "public:pipelined"
    head = (await publish_many(server.url, channel, 1, server.service_headers))[0]["id"]
    poll = f"GET /api/channels/{channel}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    parked = f"GET /api/channels/{channel}/events?after={head}&wait=20 HTTP/1.1\r\nHost: x\r\n\r\n"
    # Behind a parked long poll, 40 polls queue: the 33rd gets the 429 and the connection ends.
    reader, writer = await open_adopted(server)
    writer.write(parked.encode() + poll * 40)
    sent = await read_until(reader, b"\r\n\r\n{")
    sent += await asyncio.wait_for(reader.read(), 15)  # then the server closes: a safety net
    writer.close()
    assert sent.startswith(b"HTTP/1.1 429 Too Many Requests"), sent
    assert b'"code":"too_many_pipelined"' in sent and b"connection: close" in sent, sent
    # 4 MB of polls, answers unread: once the answers fill the socket's buffers, uvicorn
    # queues every request of each read it parses (up to 256 KiB: thousands of requests, a few
    # KiB of state each). The connection is cut at the bound (reset rather than answered: the
    # rest of what it sent is never read).
    reader, writer = await open_adopted(server)
    writer.write(poll * (4_000_000 // len(poll)))

    async def cut_off() -> bool:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{server.url}/metrics")).text
        return 'fourcast_sockets_closed_early_total{reason="pipelined"} 2.0' in text

    assert await eventually(cut_off)
    await read_until(reader, b"too_many_pipelined")  # returns at the close
    writer.close()
    assert await eventually(lambda: _no_parked(server))


async def _no_parked(server: ServerProcess) -> bool:
    return await parked_polls(server.url) == 0


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn --http --ws", "uvicorn"])
@pytest.mark.parametrize("part", ["url", "header"])
async def test_a_request_head_without_end_is_cut_off_at_the_head_bound(
    start_server: ServerFactory, launch: str, part: str
) -> None:
    """httptools keeps a head's URL and headers in memory with no bound of its own: only the
    head deadline ended one, by when a client on a fast link has sent gigabytes."""
    server = start_server(launch=launch, http_max_head_bytes=8192)
    reader, writer = await open_adopted(server)
    writer.write(b"GET /healthz?" if part == "url" else b"GET /healthz HTTP/1.1\r\nX-Big: ")
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < 8_000_000 and not reader.at_eof():  # the server's bound is ~300 KiB
            writer.write(b"a" * 16384)
            await writer.drain()
            sent += 16384
    answer = await read_until(reader, b"head_too_large")  # returns at the close
    writer.close()
    # The 431 unless the client's own bytes, unread when the server closed, reset it first.
    assert not answer or answer.startswith(b"HTTP/1.1 431"), answer[:200]

    async def cut_off() -> bool:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{server.url}/metrics")).text
        return 'fourcast_sockets_closed_early_total{reason="head_too_large"} 1.0' in text

    assert await eventually(cut_off)


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn --http --ws", "uvicorn"])
async def test_a_client_that_never_reads_its_answers_is_let_go(
    start_server: ServerFactory, launch: str
) -> None:
    """Polls for large answers, pipelined, never read: once the buffers are full the answers'
    writing stalls. Without a send deadline the connection held its socket, a task and the
    answers' bytes for good, and was never evicted: enough of them and /healthz got 503."""
    server = start_server(launch=launch, http_send_timeout=1, max_open_sockets=BOUND)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        first = await publish_many(server.url, "public:big", 1, server.service_headers)
        big = {"type": "t", "data": "x" * 60_000}
        for _ in range(20):
            published = await client.post(
                "/api/channels/public:big/events", json=big, headers=server.service_headers
            )
            assert published.status_code == 201
        poll = (
            b"GET /api/channels/public:big/events?after=%s&limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        writers = []
        for _ in range(BOUND):
            _, writer = await open_adopted(server)  # plain uvicorn: adopted by its first answer
            writer.write(poll % first[0]["id"].encode() * 20)  # about 24 MB, never read
            writers.append(writer)
        try:

            async def let_go() -> bool:
                text = (await client.get("/metrics")).text
                line = 'fourcast_sockets_closed_early_total{reason="send_timeout"}'
                closed = [row for row in text.splitlines() if row.startswith(line)]
                return bool(closed) and float(closed[0].split()[-1]) >= BOUND

            await eventually(let_go, timeout=60)
            assert (await client.get("/healthz")).status_code == 200
        finally:
            for writer in writers:
                writer.close()
