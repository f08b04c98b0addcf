"""A REST publish without an Idempotency-Key whose append reply is lost (the fault proxy holds
Redis's reply): the publisher gets 503, the event is in the log, and it reaches the node's SQL
archive all the same (app/bus/redis/recovery.py), on either launch path."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from tests.bus.helpers import wait_until
from tests.fixtures.faultproxy import fault_proxy
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import ServerFactory

MARK = "lost-rest-append-mark"


def archived(database: str) -> list[tuple[int, str]]:
    with sqlite3.connect(database) as db:
        try:
            rows = db.execute("SELECT seq, data FROM events WHERE channel = 'public:lost'")
            return [(int(seq), str(data)) for seq, data in rows]
        except sqlite3.OperationalError:  # the table not made yet
            return []


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_an_unkeyed_rest_publish_whose_append_reply_was_lost_is_archived(
    start_server: ServerFactory, redis_url: str, redis_server: RedisServer, launch: str
) -> None:
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        server = start_server(
            launch=launch, redis_url=f"redis://{proxy.url_host_port}/0", archive_linger_ms=0
        )
        url = f"{server.url}/api/channels/public:lost/events"
        async with httpx.AsyncClient(headers=server.service_headers, timeout=10) as client:
            first = await client.post(url, json={"type": "note", "data": "before"})
            assert first.status_code == 201, first.text
            proxy.arm(MARK.encode(), "blackhole", direction="down")
            lost = await client.post(url, json={"type": "note", "data": MARK})
            assert lost.status_code == 503, lost.text
            proxy.set_mode("pass")
            with redis_server.client() as direct:
                entries = direct.xrange("fourcast:ch:public:lost")
            assert [fields[b"d"] for _, fields in entries] == [b'"before"', f'"{MARK}"'.encode()]
            database = str(server.data_dir / "fourcast.db")
            # The node finds it once Redis answers (the timeout is only a failure bound).
            await wait_until(lambda: f'"{MARK}"' in [d for _, d in archived(database)], 20)
    assert [seq & ((1 << 36) - 1) for seq, _ in sorted(archived(database))] == [1, 2]
