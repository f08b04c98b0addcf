"""kill -9 of PostgreSQL under load (in-process bus + PostgreSQL): every acknowledged event is
readable afterwards, once, in order, on every transport.

The server runs with synchronous commit on (what production uses), so a COMMIT that was answered is
kept. Eight clients publish about 200 events/s or more (printed with `pytest -s`), each with its
own Idempotency-Key, retrying a refused publish with the same key; the server is killed (postmaster
and every backend, SIGKILL) and started again with crash recovery while they do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.clients import TRANSPORTS
from tests.cluster.helpers import Resuming, RetryingPublishers, every_acknowledged_event_read
from tests.fixtures.postgres import PostgresServer, running_postgres
from tests.fixtures.server import ServerFactory

pytestmark = pytest.mark.postgres

CHANNEL = "public:pg-crash"
PHASE = 150


@pytest.fixture
def durable_postgres() -> Iterator[PostgresServer]:
    with running_postgres(durable=True) as server:
        yield server


async def test_kill_9_of_postgres_under_load_keeps_every_acknowledged_event(
    durable_postgres: PostgresServer, start_server: ServerFactory
) -> None:
    node = start_server(database_url=durable_postgres.create_database("crash"))
    readers = [
        Resuming(transport, [node.url], CHANNEL, after="0").start() for transport in TRANSPORTS
    ]
    publishers = RetryingPublishers([node], CHANNEL, 0.005)
    publishers.start(clients=8)
    try:
        await publishers.until(PHASE)
        rate = len(publishers.acked) / (time.monotonic() - publishers.began)
        print(f"{rate:.0f} publishes/s acknowledged before the crash")
        refused = publishers.retries
        await asyncio.to_thread(durable_postgres.kill)
        await publishers.until_retried(refused + 1)  # down until it has refused a publish
        await asyncio.to_thread(durable_postgres.start)
        await publishers.until(len(publishers.acked) + PHASE)
    finally:
        await publishers.stop()
    acked = publishers.acked
    await every_acknowledged_event_read(publishers, readers)
    for reader in readers:
        assert reader.resets == 0, reader.transport
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        history = (
            await client.get(f"/api/channels/{CHANNEL}/events", params={"limit": 1000})
        ).json()["events"]
    kept = {e["id"]: e["data"]["n"] for e in history}
    for n, body in acked.items():
        assert kept.get(body["id"]) == n, f"event {n} acknowledged as {body['id']}, not kept"
    ids = [int(e["id"]) for e in history]
    assert ids == sorted(set(ids))
    assert node.process is not None and node.process.poll() is None
