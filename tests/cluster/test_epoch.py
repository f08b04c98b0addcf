"""Redis losing its last second: no cursor is ever acknowledged for two events.

Two nodes share one redis-server with the append-only file (`appendfsync everysec`). Publishes run
on both nodes; readers on all four transports follow the channel, resuming across nodes. At t1 the
append-only directory is copied; at t2 Redis is killed (-9) and restarted from that copy: what a
host crash or a failover to a lagging replica leaves behind. Publishes go on. Then:
- no cursor was acknowledged for two events;
- each reader got every acknowledged event, or a reset (and never an event under a cursor that
  named another one), and every event acknowledged after the restart.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients import TRANSPORTS
from tests.cluster.helpers import Resuming
from tests.fixtures.redis import RedisServer, free_port
from tests.fixtures.server import ServerFactory, ServerProcess

pytestmark = pytest.mark.redis

CHANNEL = "public:epoch"
PHASE = 60
"""Events acknowledged in each phase: before the copy, between copy and crash, after restart."""
PACE = 1 / 75
"""Seconds between one node's publishes: about 150/s over two nodes (load, not synchronisation)."""


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, whose files it may copy and replace."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, free_port())
    server.start()
    yield server
    server.stop()


class Publishers:
    """Service publishes on every node, paced; records what each 201 acknowledged."""

    def __init__(self, nodes: list[ServerProcess]) -> None:
        self.nodes = nodes
        self.acked: list[dict[str, Any]] = []
        self.refused = 0
        self.counter = 0
        self.changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(node)) for node in self.nodes]

    async def _run(self, node: ServerProcess) -> None:
        async with httpx.AsyncClient(
            base_url=node.url, headers=node.service_headers, timeout=10
        ) as client:
            while True:
                self.counter += 1
                n = self.counter
                try:
                    response = await client.post(
                        f"/api/channels/{CHANNEL}/events", json={"type": "seq", "data": {"n": n}}
                    )
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 201:
                    self.acked.append(response.json())
                    self.changed.set()
                else:
                    assert response is None or response.status_code == 503, response.text
                    self.refused += 1
                await asyncio.sleep(PACE)

    async def until(self, count: int, timeout: float = 30) -> None:
        async def reached() -> None:
            while len(self.acked) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), timeout)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _received_all(reader: Resuming, ids: set[str], timeout: float = 30) -> None:
    async def reached() -> None:
        while not ids <= {e["id"] for e in reader.durable}:
            reader._changed.clear()
            await reader._changed.wait()

    try:
        await asyncio.wait_for(reached(), timeout)
    except TimeoutError:
        missing = sorted(ids - {e["id"] for e in reader.durable})
        raise AssertionError(f"{reader.transport} misses {len(missing)}: {missing[:10]}") from None


async def test_redis_restored_from_an_older_append_only_file_reuses_no_cursor(
    own_redis: RedisServer, start_server: ServerFactory, tmp_path: Path
) -> None:
    a = start_server(redis_url=own_redis.url)
    b = start_server(redis_url=own_redis.url)
    readers = [
        Resuming(transport, [a.url, b.url][i % 2 :] + [a.url, b.url][: i % 2], CHANNEL, after="0")
        for i, transport in enumerate(TRANSPORTS)
    ]
    for reader in readers:
        reader.start()
    publishers = Publishers([a, b])
    publishers.start()
    try:
        await publishers.until(PHASE)
        # t1: the append-only file as it stands now is what Redis will come back with.
        snapshot = tmp_path / "aof-t1"
        await asyncio.to_thread(shutil.copytree, own_redis.directory / "appendonlydir", snapshot)
        copied = len(publishers.acked)
        await publishers.until(copied + PHASE)
        # t2: crash, and come back with the older file.
        await asyncio.to_thread(own_redis.kill)
        lost_window = {e["id"] for e in publishers.acked[copied:]}
        shutil.rmtree(own_redis.directory / "appendonlydir")
        shutil.copytree(snapshot, own_redis.directory / "appendonlydir")
        await asyncio.to_thread(own_redis.start)
        restarted = len(publishers.acked)
        await publishers.until(restarted + PHASE)
    finally:
        await publishers.stop()
    acked = publishers.acked
    after_restart = {e["id"] for e in acked[restarted:]}
    by_id: dict[str, Any] = {}
    for event in acked:
        assert event["id"] not in by_id, (
            f"cursor {event['id']} acknowledged for {by_id.get(event['id'])} and {event['data']}"
        )
        by_id[event["id"]] = event["data"]
    try:
        for reader in readers:
            await _received_all(reader, after_restart)
    finally:
        for reader in readers:
            await reader.stop()
    for reader in readers:
        got: dict[str, Any] = {}
        for event in reader.durable:
            # A cursor never names two events, for a reader either.
            assert got.setdefault(event["id"], event["data"]) == event["data"], reader.transport
            if event["id"] in by_id:
                assert by_id[event["id"]] == event["data"], reader.transport
        if not reader.resets:
            missing = set(by_id) - set(got)
            assert not missing, f"{reader.transport}: no reset, yet missed {sorted(missing)[:10]}"
    # The scenario did lose acknowledged events (else it proves nothing): they are gone from Redis.
    async with httpx.AsyncClient(base_url=a.url, timeout=10) as client:
        history = (
            await client.get(f"/api/channels/{CHANNEL}/events", params={"limit": 1000})
        ).json()["events"]
    kept = {e["id"] for e in history}
    assert lost_window - kept, "nothing acknowledged between the copy and the crash was lost"
    assert after_restart <= kept
