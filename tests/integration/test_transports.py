"""The foundation's promise, against a real server: one log, four transports, same events."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.clients import (
    TRANSPORTS,
    PollReader,
    make_reader,
    publish_many,
    sign_in,
    until_parked,
)
from tests.fixtures.server import ServerProcess


async def test_500_events_reach_every_transport_once_in_order(server: ServerProcess) -> None:
    channel = "public:fanout"
    readers = [await make_reader(t, server.url, channel).start() for t in TRANSPORTS]
    # One publisher in sequence, so the order of `n` is the order the server accepted them.
    published = await publish_many(server.url, channel, 500, server.service_headers)
    ids = [e["id"] for e in published]
    assert len(set(ids)) == 500
    for reader in readers:
        await reader.wait_for(500)
    # A little longer, so a duplicate sent after the 500th would be seen.
    probe = (await publish_many(server.url, channel, 1, server.service_headers, start=501))[0]
    for reader in readers:
        await reader.wait_for(501)
        await reader.stop()
        received = reader.durable
        assert [e["id"] for e in received] == [*ids, probe["id"]], reader.transport
        by_id = {e["id"]: e for e in published}
        for event in received[:500]:
            assert event == by_id[event["id"]], reader.transport


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_reader_resumes_after_drop_with_exactly_the_rest(
    server: ServerProcess, transport: str
) -> None:
    channel = f"public:resume-{transport}"
    reader = await make_reader(transport, server.url, channel).start()
    first = await publish_many(server.url, channel, 200, server.service_headers)
    await reader.wait_for(200)
    await reader.stop()
    cursor = reader.cursor
    assert reader.durable[-1]["id"] == first[-1]["id"]
    rest = await publish_many(server.url, channel, 300, server.service_headers, start=201)
    resumed = await make_reader(transport, server.url, channel, after=cursor).start()
    await resumed.wait_for(300)
    tail = await publish_many(server.url, channel, 1, server.service_headers, start=501)
    await resumed.wait_for(301)
    await resumed.stop()
    assert [e["data"]["n"] for e in resumed.durable] == list(range(201, 502))
    assert [e["id"] for e in resumed.durable] == [e["id"] for e in rest + tail]
    assert resumed.resets == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cursor_older_than_history_gets_reset(start_server, transport: str) -> None:  # type: ignore[no-untyped-def]
    server = start_server(history_size=20)
    channel = "public:short-memory"
    published = await publish_many(server.url, channel, 60, server.service_headers)
    old_cursor = published[5]["id"]
    reader = await make_reader(transport, server.url, channel, after=old_cursor).start()
    await reader.wait_for(20)
    await reader.stop()
    assert reader.resets == 1
    # It resumes from the oldest retained event: never a silent gap.
    numbers = [e["data"]["n"] for e in reader.durable]
    assert numbers[-1] == 60 and numbers == list(range(numbers[0], 61))
    assert numbers[0] <= 41


async def test_unknown_cursor_gets_reset(server: ServerProcess) -> None:
    channel = "public:unknown-cursor"
    await publish_many(server.url, channel, 3, server.service_headers)
    async with httpx.AsyncClient(base_url=server.url) as client:
        body = (await client.get(f"/api/channels/{channel}/events", params={"after": "999"})).json()
    assert body["reset"] is True
    assert [e["data"]["n"] for e in body["events"]] == [1, 2, 3]


async def test_ephemeral_events_reach_live_readers_and_never_history(server: ServerProcess) -> None:
    channel = "public:ephemeral"
    readers = [await make_reader(t, server.url, channel).start() for t in TRANSPORTS]
    async with httpx.AsyncClient(base_url=server.url, headers=server.service_headers) as client:
        response = await client.post(
            f"/api/channels/{channel}/events",
            json={"type": "typing", "data": {"who": "x"}, "ephemeral": True},
        )
        assert response.status_code == 201
        assert response.json()["id"] is None
        for reader in readers:
            await reader.wait_for(1, durable_only=False)
            await reader.stop()
            assert [(e["id"], e["type"], e["data"]) for e in reader.events] == [
                (None, "typing", {"who": "x"})
            ], reader.transport
        history = (await client.get(f"/api/channels/{channel}/events")).json()
        assert history["events"] == []


async def test_long_poll_answers_promptly_after_a_publish(server: ServerProcess) -> None:
    channel = "public:prompt"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        head = (await client.get(f"/api/channels/{channel}/events")).json()["next"]
        polls = [
            asyncio.create_task(
                client.get(f"/api/channels/{channel}/events", params={"after": head, "wait": 20})
            )
            for _ in range(5)
        ]
        await until_parked(server.url, 5)  # a missed wake-up would show as a 20 s wait
        assert not any(p.done() for p in polls)
        started = time.monotonic()
        await publish_many(server.url, channel, 1, server.service_headers)
        responses = await asyncio.gather(*polls)
        elapsed = time.monotonic() - started
    assert elapsed < 10  # woken by the publish, not by their 20 s wait
    for response in responses:
        assert [e["data"]["n"] for e in response.json()["events"]] == [1]


async def test_long_poll_returns_empty_batch_when_wait_runs_out(server: ServerProcess) -> None:
    channel = "public:quiet"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        head = (await client.get(f"/api/channels/{channel}/events")).json()["next"]
        started = time.monotonic()
        response = await client.get(
            f"/api/channels/{channel}/events", params={"after": head, "wait": 1}
        )
        assert time.monotonic() - started >= 0.9
    body = response.json()
    assert response.status_code == 200
    assert body["events"] == [] and body["reset"] is False
    assert body["next"].split("_")[0] == head.split("_")[0]


async def test_long_poll_returns_a_burst_as_one_batch(server: ServerProcess) -> None:
    channel = "public:burst"
    reader = await PollReader(server.url, channel, wait=20).start()
    await publish_many(server.url, channel, 200, server.service_headers, concurrency=8)
    await reader.wait_for(200)
    await reader.stop()
    assert sorted(e["data"]["n"] for e in reader.durable) == list(range(1, 201))
    # 200 events arrived in far fewer than 200 answers: bursts come back batched.
    assert reader.requests < 100


async def test_same_idempotency_key_returns_same_event_and_stores_one(
    server: ServerProcess,
) -> None:
    channel = "public:idempotent"
    headers = {**server.service_headers, "Idempotency-Key": "order-42"}
    async with httpx.AsyncClient(base_url=server.url) as client:
        first = await client.post(
            f"/api/channels/{channel}/events", json={"type": "t", "data": 1}, headers=headers
        )
        second = await client.post(
            f"/api/channels/{channel}/events", json={"type": "t", "data": 2}, headers=headers
        )
        history = (await client.get(f"/api/channels/{channel}/events")).json()["events"]
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == first.json()
    assert [e["id"] for e in history] == [first.json()["id"]]


async def test_guest_session_reads_and_publishes_in_rooms(server: ServerProcess) -> None:
    token, user = await sign_in(server.url, "alice")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        response = await client.post(
            "/api/channels/room:lobby/events", json={"type": "note", "data": "hi"}
        )
        assert response.status_code == 201
        assert response.json()["from"] == f"user:{user['id']}"
        history = (await client.get("/api/channels/room:lobby/events")).json()
    assert [e["data"] for e in history["events"]] == ["hi"]


@pytest.mark.parametrize("transport", ["sse", "websocket"])
async def test_resume_with_a_backlog_larger_than_the_queue_is_paced_not_stuck(
    start_server, transport: str
) -> None:  # type: ignore[no-untyped-def]
    server = start_server(queue_max_events=100, history_size=2000)
    channel = f"public:backlog-{transport}"
    published = await publish_many(server.url, channel, 1200, server.service_headers, concurrency=8)
    reader = await make_reader(transport, server.url, channel, after="0").start()
    await reader.wait_for(1200, timeout=60)
    await reader.stop()
    assert sorted(e["id"] for e in reader.durable) == sorted(e["id"] for e in published)
    assert len(reader.durable) == 1200 and reader.resets == 0
