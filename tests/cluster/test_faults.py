"""Faults in a cluster: Redis stopped, restarted and frozen under load; a node killed with SIGKILL.

Time bounds are generous hang detectors, not performance targets.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.bus.redis.streams import SEQ_BITS
from tests.clients import TRANSPORTS, WsReader, eventually, make_reader
from tests.cluster.conftest import Cluster, start_cluster
from tests.cluster.helpers import (
    Person,
    Resuming,
    assert_exactly,
    head,
    seen,
    service_publish,
    wait_seen,
)
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.redis

ANSWER_BOUND = 5.0
"""Every publish is answered (201 or 503) within this many seconds, outage or not."""


@dataclass
class Publisher:
    """Publishes numbered events to one node until stopped, recording every outcome."""

    node: ServerProcess
    channel: str
    acked: list[dict[str, Any]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    slowest: float = 0.0
    others: list[str] = field(default_factory=list)
    _n: int = 0

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=ANSWER_BOUND * 2) as client:
            while True:
                self._n += 1
                started = time.monotonic()
                try:
                    response = await service_publish(client, self.node, self.channel, self._n)
                except httpx.TransportError as exc:
                    self.others.append(f"{self._n}: {type(exc).__name__}")
                    continue
                took = time.monotonic() - started
                self.slowest = max(self.slowest, took)
                if response.status_code == 201:
                    self.acked.append(response.json())
                elif response.status_code == 503:
                    assert int(response.headers["Retry-After"]) >= 1
                    assert response.json()["error"]["code"] == "unavailable"
                    self.refused.append(self._n)
                    await asyncio.sleep(0.05)  # pacing while refused, as a client would back off
                else:
                    self.others.append(f"{self._n}: {response.status_code} {response.text}")
                await asyncio.sleep(0.005)


async def ready_status(node: ServerProcess) -> int:
    async with httpx.AsyncClient(timeout=ANSWER_BOUND) as client:
        return (await client.get(f"{node.url}/readyz")).status_code


async def all_ready(nodes: tuple[ServerProcess, ...], status: int) -> bool:
    return all([await ready_status(node) == status for node in nodes])


async def _all_reconnected(readers: list[Resuming]) -> bool:
    return all(r.incarnations >= 2 for r in readers)


def check_reader(reader: Resuming, publisher: Publisher, restarts: int = 0) -> None:
    """Every acknowledged event, in order. Anything else must be one of the publisher's own
    unacknowledged publishes: a 503 whose write reached Redis before the reply was lost, or the
    request in flight when the publisher was stopped, may have been kept (never the reverse: an
    acknowledged event is never missing).

    A Redis restart begins a new epoch (docs/scaling.md): a reader crossing it gets a `reset`, after
    which events it already had may come again, under the same cursors with the same content. So:
    a cursor never names two events; first arrivals are in order within each epoch, and epochs do
    not interleave; without a restart, no reset and no event twice."""
    got = reader.durable
    seen: dict[str, Any] = {}
    first: list[int] = []
    for event in got:
        if event["id"] in seen:
            assert seen[event["id"]] == event["data"], f"{reader.transport}: cursor reused"
            continue
        seen[event["id"]] = event["data"]
        first.append(int(event["id"]))
    epochs = [cursor >> SEQ_BITS for cursor in first]
    order = list(dict.fromkeys(epochs))
    assert epochs == sorted(epochs, key=order.index), f"{reader.transport}: epochs interleave"
    for epoch in order:
        mine = [cursor for cursor in first if cursor >> SEQ_BITS == epoch]
        assert mine == sorted(mine), f"{reader.transport}: out of order"
    acked_ids = {e["id"] for e in publisher.acked}
    extra = [data["n"] for cursor, data in seen.items() if cursor not in acked_ids]
    acked_numbers = {e["data"]["n"] for e in publisher.acked}
    unacknowledged = set(range(1, publisher._n + 1)) - acked_numbers
    assert set(extra) <= unacknowledged, f"{reader.transport}: unexpected {extra}"
    firsts = [{"id": str(c), "data": seen[str(c)]} for c in first if str(c) in acked_ids]
    by_epoch = sorted(publisher.acked, key=lambda e: order.index(int(e["id"]) >> SEQ_BITS))
    assert_exactly(firsts, by_epoch)
    if not restarts:
        assert reader.resets == 0 and len(got) == len(seen)
    else:
        assert reader.resets <= 2 * restarts, f"{reader.transport}: {reader.resets} resets"


async def test_redis_outage_and_freeze_refuse_publishes_fast_and_lose_nothing_acknowledged(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    cluster = await asyncio.to_thread(start_cluster, tmp_path, redis_url)
    try:
        await _outage(cluster, redis_server)
    finally:
        await asyncio.to_thread(cluster.servers.stop_all)


async def _outage(cluster: Cluster, redis_server: RedisServer) -> None:
    a, b = cluster.nodes
    channel = "public:outage"
    after = await head(a.url, channel)
    readers = [Resuming(t, [b.url], channel, after=after).start() for t in TRANSPORTS]
    readers.append(Resuming("websocket", [a.url], channel, after=after).start())
    publisher = Publisher(a, channel)
    publishing = asyncio.create_task(publisher.run())

    async def acked_at_least(count: int) -> bool:
        assert not publishing.done(), publishing
        return len(publisher.acked) >= count

    async def refused_at_least(count: int) -> bool:
        assert not publishing.done(), publishing
        return len(publisher.refused) >= count

    try:
        await eventually(lambda: acked_at_least(30), timeout=20)

        # Redis stopped (SIGTERM; its append-only file is flushed).
        await asyncio.to_thread(redis_server.stop)
        await eventually(lambda: refused_at_least(10), timeout=20)
        await eventually(lambda: all_ready(cluster.nodes, 503), timeout=10)
        # Streaming readers that reconnect while Redis is down retry until it is back.
        streams = [r for r in readers if r.transport in ("sse", "websocket")]
        for reader in streams:
            await reader.reconnect()
        await eventually(lambda: _all_reconnected(streams), timeout=10)
        await asyncio.to_thread(redis_server.start)
        await eventually(lambda: all_ready(cluster.nodes, 200), timeout=15)
        before = len(publisher.acked)
        await eventually(lambda: acked_at_least(before + 30), timeout=20)

        # Redis frozen (SIGSTOP: connections accepted, nothing answered).
        refused = len(publisher.refused)
        redis_server.freeze()
        try:
            await eventually(lambda: refused_at_least(refused + 2), timeout=20)
            await eventually(lambda: all_ready(cluster.nodes, 503), timeout=10)
        finally:
            redis_server.thaw()
        await eventually(lambda: all_ready(cluster.nodes, 200), timeout=15)
        before = len(publisher.acked)
        await eventually(lambda: acked_at_least(before + 30), timeout=20)
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)

    assert publisher.others == []
    assert publisher.slowest < ANSWER_BOUND, publisher.slowest
    try:
        for reader in readers:
            await reader.wait_for_ids({e["id"] for e in publisher.acked}, timeout=30)
        await asyncio.sleep(0.3)  # room for a duplicate to show up
        for reader in readers:
            check_reader(reader, publisher, restarts=1)
    finally:
        for reader in readers:
            await reader.stop()
    cluster.assert_alive()
    # Acknowledged means kept: the channel's history holds every acknowledged event (read as
    # the latest events: a read from the old cursor stops where the restart began a new epoch).
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{b.url}/api/channels/{channel}/events", params={"limit": 1000}
        )
    kept = {e["id"] for e in response.json()["events"]}
    assert {e["id"] for e in publisher.acked} <= kept


async def test_clients_of_a_killed_node_resume_on_the_other_without_loss(
    redis_url: str, tmp_path: Path
) -> None:
    cluster = await asyncio.to_thread(start_cluster, tmp_path, redis_url)
    a, b = cluster.nodes
    channel = "public:killed"
    try:
        after = await head(b.url, channel)
        # Each reader starts on A; when A dies it resumes on B (and stays there: A is gone).
        readers = [Resuming(t, [a.url, b.url], channel, after=after).start() for t in TRANSPORTS]
        published: list[dict[str, Any]] = []
        async with httpx.AsyncClient(timeout=10) as client:
            for n in range(1, 61):
                node = (a, b)[n % 2]
                response = await service_publish(client, node, channel, n)
                assert response.status_code == 201, response.text
                published.append(response.json())
            for reader in readers:
                await reader.wait_for(60)
                assert reader.nodes_used == [a.url], reader.transport
            a.kill()  # SIGKILL: no drain, no close frames
            for n in range(61, 121):
                response = await service_publish(client, b, channel, n)
                assert response.status_code == 201, response.text
                published.append(response.json())
        try:
            for reader in readers:
                await reader.wait_for(120)
            await asyncio.sleep(0.3)  # room for a duplicate to show up
            for reader in readers:
                assert b.url in reader.nodes_used, reader.transport
                assert reader.resets == 0
                assert_exactly(reader.durable, published)
        finally:
            for reader in readers:
                await reader.stop()
        assert b.process is not None and b.process.poll() is None
        assert await ready_status(b) == 200
    finally:
        await asyncio.to_thread(cluster.servers.stop_all)


async def test_people_of_a_killed_node_leave_within_their_lease(
    redis_url: str, fresh_postgres_url: str, tmp_path: Path
) -> None:
    lease = 2.0
    cluster = await asyncio.to_thread(
        start_cluster, tmp_path, redis_url, database_url=fresh_postgres_url, presence_lease=lease
    )
    a, b = cluster.nodes
    room = "room:crash"
    try:
        watcher = await Person.sign_in(b, "watcher")
        victim = await Person.sign_in(a, "victim")
        survivor = await Person.sign_in(a, "survivor")
        watching = await WsReader(b.url, room, token=watcher.token).start()
        # The victim is connected only to A (a WebSocket and an SSE stream); the survivor has a
        # second connection on B, so they stay.
        victim_ws = await WsReader(a.url, room, token=victim.token).start()
        victim_sse = await make_reader("sse", a.url, room, token=victim.token).start()
        survivor_a = await WsReader(a.url, room, token=survivor.token).start()
        survivor_b = await WsReader(b.url, room, token=survivor.token).start()
        try:
            await wait_seen(watching, "presence.join", user=victim.id)
            await wait_seen(watching, "presence.join", user=survivor.id)
            a.kill()
            killed = time.monotonic()
            await wait_seen(watching, "presence.leave", user=victim.id, timeout=lease + 5)
            took = time.monotonic() - killed
            assert took < lease + 4, took

            async def victim_gone() -> bool:
                members = (await watcher.presence(b, room))["members"]
                return victim.id not in [m["user"] for m in members]

            await eventually(victim_gone, timeout=5)
            members = (await watcher.presence(b, room))["members"]
            assert survivor.id in [m["user"] for m in members]
            assert seen(watching, "presence.leave", user=survivor.id) == []
            assert len(seen(watching, "presence.leave", user=victim.id)) == 1
            assert len(seen(watching, "presence.join", user=victim.id)) == 1
        finally:
            for reader in (watching, victim_ws, victim_sse, survivor_a, survivor_b):
                await reader.stop()
        assert b.process is not None and b.process.poll() is None
    finally:
        await asyncio.to_thread(cluster.servers.stop_all)
