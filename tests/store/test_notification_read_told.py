"""A notification marked read whose `notification.read` event could not be kept.

The read mark and its event are two writes (the store's row, then the event log): when the event
fails, the request answers 503 and the client retries. The retry must still tell the person's other
clients (docs/protocol.md: an event "when anything changed"): the read mark is taken back with the
failed event, as a notification whose event failed is. The failure is real: after PostgreSQL
dropped every connection, the journal's first write fails while it takes its writer lock again on
a new session (docs/operations.md, "One journal, one writer"), and the row's UPDATE, on a new
connection of the pool, succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.clients import sign_in
from tests.fixtures.faultproxy import FaultProxy, fault_proxy
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import ServerFactory

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_proxy(postgres_server: PostgresServer) -> Iterator[FaultProxy]:
    with fault_proxy(postgres_server.host, postgres_server.port) as proxy:
        yield proxy


async def _reads_told(client: httpx.AsyncClient, user: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/channels/user:{user}/events", params={"after": "0"})
    assert response.status_code == 200, response.text
    return [e["data"] for e in response.json()["events"] if e["type"] == "notification.read"]


@pytest.mark.parametrize("path", ["{id}/read", "read-all"])
async def test_a_read_whose_event_failed_is_told_when_retried(
    start_server: ServerFactory, fresh_postgres_url: str, pg_proxy: FaultProxy, path: str
) -> None:
    url = make_url(fresh_postgres_url).set(host="127.0.0.1", port=pg_proxy.port)
    node = start_server(database_url=url.render_as_string(hide_password=False))
    token, user = await sign_in(node.url, "alice")
    me = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=node.url, headers=me, timeout=30) as client:
        sent = await client.post(
            "/api/notifications",
            json={"user": user["id"], "title": "hello"},
            headers=node.service_headers,
        )
        assert sent.status_code == 201, sent.text
        read = f"/api/notifications/{path.format(id=sent.json()['id'])}"
        pg_proxy.set_mode("reset")  # every session ends, the journal writer's too
        pg_proxy.set_mode("pass")
        first = await client.post(read)
        assert first.status_code == 503, first.text  # the journal's first write after it
        assert first.headers.get("Retry-After")
        listed = (await client.get("/api/notifications")).json()
        # Not acknowledged, not told: the mark is not kept either.
        assert listed["unread"] == 1, listed
        retried = await client.post(read)
        assert retried.status_code == 200, retried.text
        assert retried.json() == {"unread": 0}
        told = await _reads_told(client, user["id"])
    assert [t["unread"] for t in told] == [0], told
