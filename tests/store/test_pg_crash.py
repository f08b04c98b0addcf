"""kill -9 of PostgreSQL under load (in-process bus + PostgreSQL): every acknowledged event is
readable afterwards, once, in order, on every transport.

The server runs with synchronous commit on (what production uses), so a COMMIT that was answered is
kept. Eight clients publish about 200 events/s or more (printed with `pytest -s`), each with its
own Idempotency-Key, retrying a refused publish with the same key; the server is killed (postmaster
and every backend, SIGKILL) and started again with crash recovery while they do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.clients import TRANSPORTS
from tests.cluster.helpers import Resuming, RetryingPublishers, every_acknowledged_event_read
from tests.fixtures.postgres import PostgresServer, running_postgres
from tests.fixtures.server import API_KEY, ServerFactory, ServerProcess

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


async def _publish(url: str, n: int) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.post(
            f"/api/channels/{WRITER_CHANNEL}/events",
            json={"type": "n", "data": n},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )


WRITER_CHANNEL = "public:one-writer"


@contextlib.contextmanager
def frozen(server: ServerProcess) -> Iterator[None]:
    """The server's process stopped (SIGSTOP) for the block: it takes no step meanwhile."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_writer_whose_lock_was_taken_during_a_restart_stops_writing(
    durable_postgres: PostgresServer, start_server: ServerFactory, launch: str
) -> None:
    """A restart of PostgreSQL ends the writer's session and its advisory lock with it. A
    second process starting then takes the lock: the first must not write a single event more
    (it would hand out cursors the second hands out too), and it shuts down."""
    url = durable_postgres.create_database("writer")
    first = start_server(database_url=url, launch=launch)
    assert (await _publish(first.url, 1)).status_code == 201
    with frozen(first):  # so that the second process surely comes first, after the restart
        await asyncio.to_thread(durable_postgres.kill)
        await asyncio.to_thread(durable_postgres.start)
        second = start_server(database_url=url, launch=launch)  # the lock is free: it starts
        assert (await _publish(second.url, 2)).status_code == 201
    try:
        refused = await _publish(first.url, 3)
    except httpx.TransportError:
        pass  # its own look at the session, due while it was frozen, came first: it is gone
    else:
        assert refused.status_code == 503, refused.text  # found at the write: never written
    assert first.process is not None
    await asyncio.to_thread(first.process.wait, 60)  # it shuts itself down
    assert "lost the journal's writer lock" in first.log()
    assert (await _publish(second.url, 4)).status_code == 201
    async with httpx.AsyncClient(base_url=second.url, timeout=10) as client:
        events = (
            await client.get(f"/api/channels/{WRITER_CHANNEL}/events", params={"after": "0"})
        ).json()["events"]
    assert [(e["id"], e["data"]) for e in events] == [("1", 1), ("2", 2), ("3", 4)]


async def test_after_a_restart_of_postgres_the_writer_takes_its_lock_again(
    durable_postgres: PostgresServer, start_server: ServerFactory
) -> None:
    url = durable_postgres.create_database("retake")
    first = start_server(database_url=url)
    assert (await _publish(first.url, 1)).status_code == 201
    await asyncio.to_thread(durable_postgres.kill)
    await asyncio.to_thread(durable_postgres.start)
    # The first write after the restart finds the old session gone and may be refused (503);
    # one of the next takes the lock again.
    statuses = [(await _publish(first.url, n)).status_code for n in range(2, 5)]
    assert 201 in statuses and set(statuses) <= {201, 503}, statuses
    with pytest.raises(RuntimeError) as refused:
        start_server(database_url=url)
    assert "already writing the journal" in str(refused.value)


async def test_an_idle_writer_whose_lock_was_taken_during_a_restart_stops_too(
    durable_postgres: PostgresServer, start_server: ServerFactory
) -> None:
    """No publish comes to tell it: its readers would be served from a memory that no longer
    follows the journal, so it looks at its session now and then by itself."""
    url = durable_postgres.create_database("idle")
    first = start_server(database_url=url)
    with frozen(first):
        await asyncio.to_thread(durable_postgres.kill)
        await asyncio.to_thread(durable_postgres.start)
        second = start_server(database_url=url)
        assert (await _publish(second.url, 1)).status_code == 201
    assert first.process is not None
    await asyncio.to_thread(first.process.wait, 60)
    assert "lost the journal's writer lock" in first.log()
