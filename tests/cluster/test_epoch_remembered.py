"""The highest Redis epoch, remembered in the database (table `highest_epoch`, app/store/epochs.py).

A node starting after Redis lost its data must propose an epoch above every one cursors were made
in, or room history would sort the new messages before the old. It read that epoch from
`max(seq)` of the events table before, a scan of the whole archive at every start; the row is
read instead, and written whenever a node meets a higher epoch. Here the archive's own rows are
gone as well (a retention job deleted them): the row alone knows the epoch.

One `python -m app` node on each database: the epoch is the bus's, alike on both launch paths.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.bus.redis.streams import split_cursor
from tests.clients import eventually
from tests.cluster.conftest import HIGH
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import API_KEY, ServerProcess, Servers

pytestmark = pytest.mark.redis

CHANNEL = "public:epochs"


class Database:
    """The node's database as the test reads and changes it, beside the node."""

    def __init__(self, run: Callable[[str], str], url: str | None) -> None:
        self.run = run
        self.settings = {} if url is None else {"database_url": url}

    def remembered(self) -> int | None:
        out = self.run("SELECT epoch FROM highest_epoch").strip()
        return int(out) if out else None


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database("epochs")
        name = url.rsplit("/", 1)[1]
        return Database(lambda sql: server.psql(sql, name), url)
    path = tmp_path / "node0" / "fourcast.db"  # the first node's default database

    def run(sql: str) -> str:
        with sqlite3.connect(path) as db:
            rows = db.execute(sql).fetchall()
        return "\n".join(str(row[0]) for row in rows)

    return Database(run, None)


async def publish(node: ServerProcess, n: int) -> int:
    """Publish one event; its epoch."""
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        response = await client.post(
            f"/api/channels/{CHANNEL}/events",
            json={"type": "n", "data": n},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
    assert response.status_code == 201, response.text
    return split_cursor(int(response.json()["id"]))[0]


async def remembered(database: Database, epoch: int) -> None:
    async def kept() -> bool:
        return await asyncio.to_thread(database.remembered) == epoch

    await eventually(kept, timeout=20)


async def test_a_node_goes_above_the_remembered_epoch_when_the_archive_lost_its_rows(
    own_redis: RedisServer,
    servers: Servers,
    database: Database,
) -> None:
    node = servers.start(redis_url=own_redis.url, **database.settings)
    assert await publish(node, 1) == HIGH  # the marker's epoch, for this Redis run
    await remembered(database, HIGH)

    await asyncio.to_thread(own_redis.flush)  # Redis lost its data while the node runs
    flushed = await publish(node, 2)
    assert flushed > HIGH
    await remembered(database, flushed)  # written as the node met it, not only as it stops

    await asyncio.to_thread(node.stop)
    database.run("DELETE FROM events")  # the archive's own rows are gone
    await asyncio.to_thread(own_redis.restart_empty)  # and Redis lost its data with no node up
    await asyncio.to_thread(node.start)
    after = await publish(node, 3)
    assert after > flushed, (flushed, after)
    await remembered(database, after)
