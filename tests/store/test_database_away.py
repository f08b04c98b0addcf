"""People, rooms and notifications while the database is away: 503 + Retry-After, as publishes get.

Those endpoints reach the database directly (not through the event log), so its errors must be told
as the outage they are (docs/operations.md, "While a dependency is away"), on both launch paths,
without a traceback that makes the server drop the client's keep-alive connection; and they work
again, without a restart, once the database is back. The server reaches PostgreSQL through the
fault proxy, which resets every connection while the database is "away".
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.clients import sign_in
from tests.fixtures.faultproxy import FaultProxy, fault_proxy
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import ServerFactory, ServerProcess

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_proxy(postgres_server: PostgresServer) -> Iterator[FaultProxy]:
    with fault_proxy(postgres_server.host, postgres_server.port) as proxy:
        yield proxy


async def _calls(node: ServerProcess, client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    """One of each request that needs the database, by name."""
    me = client.headers
    return {
        "sign in": await client.post(
            "/api/session", json={"name": "bob"}, headers={"Origin": node.url}
        ),
        "create room": await client.post("/api/rooms", json={"name": "second"}, headers=me),
        "list rooms": await client.get("/api/rooms"),
        "join": await client.post("/api/rooms/lobby/join", headers=me),
        "members": await client.get("/api/rooms/lobby/members", headers=me),
        "history": await client.get("/api/rooms/lobby/messages", headers=me),
        "notifications": await client.get("/api/notifications", headers=me),
        "read all": await client.post("/api/notifications/read-all", headers=me),
        "notify": await client.post(
            "/api/notifications",
            json={"user": client.headers["X-Test-User"], "title": "hi"},
            headers=node.service_headers,
        ),
    }


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_requests_that_need_the_database_get_503_while_it_is_away(
    start_server: ServerFactory,
    fresh_postgres_url: str,
    pg_proxy: FaultProxy,
    launch: str,
) -> None:
    url = make_url(fresh_postgres_url).set(host="127.0.0.1", port=pg_proxy.port)
    node = start_server(database_url=url.render_as_string(hide_password=False), launch=launch)
    token, user = await sign_in(node.url, "alice")
    headers = {"Authorization": f"Bearer {token}", "X-Test-User": user["id"]}
    async with httpx.AsyncClient(base_url=node.url, headers=headers, timeout=30) as client:
        assert (await client.post("/api/rooms", json={"name": "lobby"})).status_code == 201
        pg_proxy.set_mode("reset")
        away = await _calls(node, client)
        for name, response in away.items():
            assert response.status_code == 503, (name, response.text)
            assert response.headers.get("Retry-After") == "2", name
            error = response.json()["error"]
            assert error["code"] == "unavailable" and error["message"], name
            assert error["request_id"] == response.headers["X-Request-Id"], name
        pg_proxy.set_mode("pass")
        # The journal's first write after its session was lost answers 503 while it takes its
        # writer lock again (docs/operations.md, "One journal, one writer"): a client retries.
        statuses = []
        while 201 not in statuses:
            assert len(statuses) < 3, statuses
            published = await client.post(
                "/api/channels/public:back/events",
                json={"type": "t", "data": 1},
                headers=node.service_headers,
            )
            statuses.append(published.status_code)
        back = await _calls(node, client)
    for name, response in back.items():
        assert response.status_code < 300, (name, response.text)
    # Answered, not raised to the server: no traceback, and the keep-alive connection was kept
    # (a server that raises after answering closes it, and the next request would be reset).
    assert "Exception in ASGI application" not in node.log()
