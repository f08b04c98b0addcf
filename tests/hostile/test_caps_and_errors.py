"""Held long polls count against the connection caps on both HTTP paths, and server-side failures
tell the client a request id, never the storage error behind them."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import orjson
import pytest
import websockets

from app.bus import BusUnavailable, Event, NullJournal, create_bus
from app.errors import Unavailable
from app.features.publishing import SERVER, Publisher
from app.identity.limits import TokenBuckets
from app.settings import Settings
from app.web.errors import bus_unavailable_response
from tests.clients import eventually, sign_in
from tests.fixtures.server import API_KEY, ROOT, ServerFactory, ServerProcess, free_port

SECRET_SQL = "INSERT INTO events (channel, data) VALUES ('user:bob', 'his secret')"


async def test_held_long_polls_count_against_the_per_address_and_per_person_caps(
    start_server: ServerFactory,
) -> None:
    server = start_server(max_connections_per_ip=3, max_connections_per_user=2)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        # Anonymous long polls (held in python -m app's quick lane): three fill the address.
        url = await _follow_url(client, server, "public:caps")
        held = [asyncio.create_task(client.get(url)) for _ in range(3)]
        await _until_held(client, 3)
        refused = await client.get(url)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        await _publish(client, server, "public:caps")
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200, 200]
        # A person's long polls (the ASGI route) count against their own cap.
        await _until_held(client, 0)
        token, _ = await sign_in(server.url, "poller")
        client.headers["Authorization"] = f"Bearer {token}"
        url = await _follow_url(client, server, "room:caps")
        held = [asyncio.create_task(client.get(url)) for _ in range(2)]
        await _until_held(client, 2)
        refused = await client.get(url)
        assert refused.status_code == 429, refused.text
        assert "user" in refused.json()["error"]["message"]
        await _publish(client, server, "room:caps")
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]


async def _publish(client: httpx.AsyncClient, server: ServerProcess, channel: str) -> None:
    response = await client.post(
        f"/api/channels/{channel}/events",
        json={"type": "t", "data": 1},
        headers=server.service_headers,
    )
    assert response.status_code == 201


async def _follow_url(client: httpx.AsyncClient, server: ServerProcess, channel: str) -> str:
    """A long poll following `channel` from its head (one event in: a cursor past the start)."""
    await _publish(client, server, channel)
    head = (await client.get(f"/api/channels/{channel}/events")).json()["next"]
    # One poll from there (a person's first one announces their presence.join, which it returns).
    head = (await client.get(f"/api/channels/{channel}/events?after={head}")).json()["next"]
    return f"/api/channels/{channel}/events?after={head}&wait=20"


async def _until_held(client: httpx.AsyncClient, count: int) -> None:
    async def held() -> bool:
        text = (await client.get("/metrics")).text
        return f"fourcast_connections_held {float(count)}" in text

    await eventually(held)


async def test_reopening_streams_in_a_loop_spends_the_subscribe_budget(
    start_server: ServerFactory,
) -> None:
    server = start_server(subscribe_burst=3, subscribe_rate=0.01)
    token, _ = await sign_in(server.url, "reopener")
    headers = {"Authorization": f"Bearer {token}"}
    statuses = []
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as client:
        for _ in range(4):
            async with client.stream("GET", "/api/channels/room:loop/stream?after=0") as stream:
                statuses.append(stream.status_code)
                if stream.status_code == 429:
                    assert int(stream.headers["retry-after"]) >= 1
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_streams_from_the_start_spend_the_addresss_read_budget(
    start_server: ServerFactory, launch: str
) -> None:
    """Anonymous readers reopening a stream (or a WebSocket subscribe) from the start in a loop
    are refused, as polls from the start are; a stream from a later cursor is not."""
    server = start_server(launch=launch, read_all_burst=3, read_all_rate=0.01)
    await _publish_n(server, "public:hist", 3)
    url = "/api/channels/public:hist/stream?after=0"
    statuses = []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for _ in range(4):
            async with client.stream("GET", url) as stream:
                statuses.append(stream.status_code)
                if stream.status_code == 429:
                    assert int(stream.headers["retry-after"]) >= 1
        later = "/api/channels/public:hist/stream?after=1"
        async with client.stream("GET", later) as stream:
            assert stream.status_code == 200
    assert statuses == [200, 200, 200, 429]
    async with websockets.connect(server.ws_url) as ws:
        await ws.recv()  # welcome
        await ws.send(
            orjson.dumps({"op": "subscribe", "channel": "public:hist", "after": "0"}).decode()
        )
        refused = orjson.loads(await ws.recv())
        assert (refused["op"], refused["code"]) == ("error", "rate_limited"), refused


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_streams_from_a_cursor_that_resets_spend_the_read_budget(
    start_server: ServerFactory, launch: str
) -> None:
    """A cursor the channel never issued (or one older than its history) is answered with a
    reset and the whole kept history: a read from the start, whose budget it spends, so that
    `after=<huge>` is no way around the budget `after=0` spends. A cursor within the history
    spends nothing."""
    server = start_server(launch=launch, read_all_burst=2, read_all_rate=0.01)
    await _publish_n(server, "public:reset", 3)
    unknown = "/api/channels/public:reset/stream?after=999"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        # The reset's own id: the cursor the stream now stands after, before the oldest event.
        frames = await _stream_frames(client, unknown, until="id: 3")
        assert frames == ["reset", "0", "1", "2", "3"]
        async with websockets.connect(server.ws_url) as ws:
            await ws.recv()  # welcome
            await ws.send(_op("subscribe", channel="public:reset", after="999"))
            ops = [orjson.loads(await ws.recv()) for _ in range(5)]  # the reset, 3 events, ack
            assert sorted(op["op"] for op in ops) == ["ack", "event", "event", "event", "reset"]
            # The budget is spent: a third reset is refused before any history is copied.
            await ws.send(_op("subscribe", channel="public:reset", after="7"))
            refused = orjson.loads(await ws.recv())
            assert (refused["op"], refused["code"]) == ("error", "rate_limited"), refused
            assert refused["retry_after"] >= 1
        # The stream ends with nothing sent: no reset, no event.
        assert await _stream_frames(client, unknown, until=None) == []
        within = "/api/channels/public:reset/stream?after=1"
        assert await _stream_frames(client, within, until="id: 3") == ["2", "3"]


def _op(op: str, **fields: str) -> str:
    return orjson.dumps({"op": op, **fields}).decode()


async def _stream_frames(client: httpx.AsyncClient, url: str, until: str | None) -> list[str]:
    """The reset frames and event ids an SSE stream sends, up to the line `until` (None: to its
    end, which must come by itself)."""
    frames: list[str] = []
    async with client.stream("GET", url) as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line == "event: reset":
                frames.append("reset")
            elif line.startswith("id: "):
                frames.append(line[4:])
            if line == until:
                return frames
    assert until is None, f"the stream ended before {until!r}: {frames}"
    return frames


async def _publish_n(server: ServerProcess, channel: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for _ in range(count):
            await _publish(client, server, channel)


def test_a_503_body_names_a_request_id_and_the_log_keeps_the_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    response = bus_unavailable_response(BusUnavailable(f"database unavailable: {SECRET_SQL}"))
    body = orjson.loads(response.body)
    request_id = body["error"]["request_id"]
    assert response.status_code == 503 and response.headers["x-request-id"] == request_id
    assert body["error"]["message"] == "event log unavailable"
    assert b"INSERT" not in response.body and b"secret" not in response.body
    assert any(
        request_id in r.getMessage() and SECRET_SQL in r.getMessage() for r in caplog.records
    )


class BrokenJournal(NullJournal):
    async def append(self, events: Sequence[Event]) -> None:
        raise BusUnavailable(f"database unavailable: {SECRET_SQL}")


async def test_a_failed_publish_says_unavailable_without_the_storage_error() -> None:
    bus = create_bus(Settings(), BrokenJournal())
    await bus.start()
    try:
        publisher = Publisher(bus, TokenBuckets(100, 100), 65536)
        with pytest.raises(Unavailable) as refused:
            await publisher.publish_trusted(SERVER, "room:x", "t", 1)
        assert refused.value.message == "event log unavailable"
    finally:
        await bus.stop()


@pytest.fixture
def plain_uvicorn(tmp_path: Path) -> Iterator[str]:
    """The other launch path: stock `uvicorn app.main:app`, no quick lane, no fourcast server."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOURCAST_")}
    env.update(
        FOURCAST_DATA_DIR=str(tmp_path),
        FOURCAST_API_KEYS=f"tests:{API_KEY}",
        FOURCAST_SIGNUP_BURST="2",
        FOURCAST_MAX_CONNECTIONS_PER_IP="2",
    )
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    with (tmp_path / "uvicorn.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(15)


async def test_budgets_caps_and_reserved_types_hold_under_plain_uvicorn(plain_uvicorn: str) -> None:
    async with httpx.AsyncClient(base_url=plain_uvicorn, timeout=30) as client:

        async def up() -> bool:
            try:
                return (await client.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(up, timeout=20)
        signups = [await client.post("/api/session", json={"name": f"g{n}"}) for n in range(3)]
        assert [r.status_code for r in signups] == [201, 201, 429]
        assert int(signups[2].headers["retry-after"]) >= 1
        forged = await client.post(
            "/api/channels/room:x/events",
            json={"type": "reset", "data": {}},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert forged.status_code == 400 and forged.json()["error"]["code"] == "reserved_type"
        head = (await client.get("/api/channels/public:u/events")).json()["next"]
        url = f"/api/channels/public:u/events?after={head}&wait=20"
        held = [asyncio.create_task(client.get(url)) for _ in range(2)]
        await _until_held(client, 2)
        assert (await client.get(url)).status_code == 429
        for task in held:
            task.cancel()
