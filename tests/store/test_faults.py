"""The journal under faults: publishes get 503 and are never acknowledged falsely.

- SQLite locked by another writer: a real second connection holds the write lock for a few seconds
  while a real server takes publishes.
- The disk full: SQLite's `max_page_count` on the journal's writer connection makes the file unable
  to grow, exactly as a full disk does (SQLITE_FULL).
- PostgreSQL gone: the server reaches its database through the fault proxy, which resets every
  connection (the server stopped) and then lets them through again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.engine import make_url

from app.bus.backend import BusUnavailable, Draft
from app.bus.memory import MemoryBackend
from app.store.db import create_engine
from app.store.journal import SqlJournal
from app.store.migrate import upgrade_to_head
from app.store.sqlite_appender import SqliteAppender
from tests.cluster.helpers import RetryingPublishers
from tests.fixtures.faultproxy import FaultProxy, fault_proxy
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import ServerFactory, ServerProcess

FAULT = 5.0
"""Seconds each fault lasts (the publishers keep going meanwhile)."""


async def _publish_during(
    node: ServerProcess, until: float, start: int, workers: int = 4
) -> dict[int, httpx.Response]:
    """Publish numbered events from `workers` clients until the monotonic time `until`."""
    results: dict[int, httpx.Response] = {}
    numbers = iter(range(start, start + 100_000))

    async def worker() -> None:
        async with httpx.AsyncClient(
            base_url=node.url, headers=node.service_headers, timeout=30
        ) as client:
            while time.monotonic() < until:
                n = next(numbers)
                results[n] = await client.post(
                    "/api/channels/public:faults/events", json={"type": "seq", "data": {"n": n}}
                )
                if results[n].status_code != 201:
                    await asyncio.sleep(0.1)  # a client honouring Retry-After, shortened

    await asyncio.gather(*(worker() for _ in range(workers)))
    return results


async def _history(node: ServerProcess) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        response = await client.get(
            "/api/channels/public:faults/events", params={"after": "0", "limit": 1000}
        )
        assert response.status_code == 200, response.text
        return response.json()["events"]  # type: ignore[no-any-return]


def _check(results: dict[int, httpx.Response], history: list[dict[str, Any]]) -> None:
    """Every 201 is in the history once, under the cursor it was acknowledged with, in order;
    every refusal was a 503 with Retry-After; and nothing refused was kept."""
    acked = {n: r.json()["id"] for n, r in results.items() if r.status_code == 201}
    refused = [n for n, r in results.items() if r.status_code != 201]
    for n in refused:
        assert results[n].status_code == 503, results[n].text
        assert results[n].headers.get("Retry-After"), results[n].headers
    kept = [(e["data"]["n"], e["id"]) for e in history]
    assert len({cursor for _, cursor in kept}) == len(kept), "a cursor names two events"
    assert [int(c) for _, c in kept] == sorted(int(c) for _, c in kept)
    by_n = dict(kept)
    for n, cursor in acked.items():
        assert by_n.get(n) == cursor, f"event {n} acknowledged as {cursor}, kept as {by_n.get(n)}"
    assert refused, "the fault refused nothing: it proves nothing"
    return None


async def test_sqlite_locked_by_another_writer_refuses_and_never_acks_falsely(
    start_server: ServerFactory,
) -> None:
    node = start_server()
    before = await _publish_during(node, time.monotonic() + 0.5, 0, workers=1)
    other = sqlite3.connect(node.data_dir / "fourcast.db", isolation_level=None, timeout=10)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        during = await _publish_during(node, time.monotonic() + FAULT, 10_000)
        other.execute("ROLLBACK")
    finally:
        other.close()
    after = await _publish_during(node, time.monotonic() + 0.5, 20_000, workers=1)
    results = {**before, **during, **after}
    _check(results, await _history(node))
    # Nothing written while the lock was held; everything after.
    assert all(r.status_code == 503 for r in during.values())
    assert all(r.status_code == 201 for r in after.values()) and after


@pytest.fixture
def pg_proxy(postgres_server: PostgresServer) -> Iterator[FaultProxy]:
    with fault_proxy(postgres_server.host, postgres_server.port) as proxy:
        yield proxy


@pytest.mark.postgres
async def test_postgres_gone_refuses_and_never_acks_falsely(
    start_server: ServerFactory, fresh_postgres_url: str, pg_proxy: FaultProxy
) -> None:
    url = make_url(fresh_postgres_url).set(host="127.0.0.1", port=pg_proxy.port)
    node = start_server(database_url=url.render_as_string(hide_password=False))
    before = await _publish_during(node, time.monotonic() + 0.5, 0, workers=1)
    pg_proxy.set_mode("reset")
    during = await _publish_during(node, time.monotonic() + FAULT, 10_000)
    pg_proxy.set_mode("pass")
    after: dict[int, httpx.Response] = {}
    deadline = time.monotonic() + 30
    while not any(r.status_code == 201 for r in after.values()):
        assert time.monotonic() < deadline, "publishes never recovered"
        after.update(await _publish_during(node, time.monotonic() + 0.5, 20_000 + len(after), 1))
    results = {**before, **during, **after}
    _check(results, await _history(node))
    assert node.process is not None and node.process.poll() is None


async def test_a_full_disk_refuses_the_batch_and_the_next_one_numbers_on(tmp_path: Path) -> None:
    path = tmp_path / "fourcast.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_to_head(url)
    engine = create_engine(url)
    appender = SqliteAppender(path)
    backend = MemoryBackend(SqlJournal(engine, appender=appender), history_size=1000)
    delivered: list[Any] = []
    await backend.start(delivered.extend)
    loop = asyncio.get_running_loop()

    def limit_pages(extra: int) -> None:
        connection = appender._connection or appender._connect()
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages + extra}")

    try:
        channel = "room:full"
        big = orjson.dumps("x" * 20_000)
        acked = [await backend.append([Draft(channel, "test", big, "service:test")])]
        await loop.run_in_executor(appender._thread, limit_pages, 1)
        with pytest.raises(BusUnavailable, match="full"):
            for _ in range(20):
                acked.append(await backend.append([Draft(channel, "test", big, "service:test")]))
        await loop.run_in_executor(appender._thread, limit_pages, 10_000)  # space again
        acked.append(await backend.append([Draft(channel, "test", b"1", "service:test")]))
        stored = (await backend.read(channel, 0, 1000)).events
        assert [e.seq for e in stored] == [e.seq for batch in acked for e in batch]
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
        assert [e.seq for e in delivered] == [e.seq for e in stored]
    finally:
        await backend.stop()
        await appender.close()
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_blackholed_retries_with_the_same_key_store_each_event_once(
    start_server: ServerFactory, fresh_postgres_url: str, pg_proxy: FaultProxy
) -> None:
    """A COMMIT reaches PostgreSQL and its reply never comes back (then nothing does, until the
    connections are reset), while clients publish, each event with its own Idempotency-Key and
    retried with it: the retry finds the event the COMMIT kept instead of storing it again."""
    url = make_url(fresh_postgres_url).set(host="127.0.0.1", port=pg_proxy.port)
    node = start_server(database_url=url.render_as_string(hide_password=False))
    publishers = RetryingPublishers([node], "public:faults", 0.005)
    publishers.start(clients=3)
    try:
        await publishers.until(50)
        # The next COMMIT reaches PostgreSQL, and its reply (and every later one) is held.
        pg_proxy.arm(b"COMMIT", "blackhole", direction="down")
        await publishers.until_retried(3)
        assert pg_proxy.fired
        pg_proxy.set_mode("reset")  # the hung connections are dropped, as a timeout would
        pg_proxy.set_mode("pass")
        await publishers.until(len(publishers.acked) + 50)
    finally:
        await publishers.stop()
    history = await _history(node)
    numbers = [e["data"]["n"] for e in history]
    assert len(numbers) == len(set(numbers)), "an event was stored twice"
    kept = {e["data"]["n"]: e["id"] for e in history}
    for n, body in publishers.acked.items():
        assert kept.get(n) == body["id"], f"event {n} acknowledged as {body['id']}"
