"""`POST /api/notifications` with an `Idempotency-Key` (docs/protocol.md): a service's retry gets
the first notification (200), never a second one, on both bus backends and both launch paths;
and a retry after a send whose event was kept but whose reply was lost (the fault proxy holds
Redis's reply) ends with exactly one notification and one event, the one clients were told."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.clients import eventually, sign_in
from tests.fixtures.faultproxy import fault_proxy
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import API_KEY, ServerFactory

OTHER_KEY = "other-service-key-0123456789"
LAUNCHES = ["python -m app", "uvicorn"]


async def _told(client: httpx.AsyncClient, user: str) -> list[dict[str, Any]]:
    """The `notification` events on the person's channel, oldest first."""
    told = await _told_if_up(client, user)
    assert told is not None, "the event log is unavailable"
    return told


async def _told_if_up(client: httpx.AsyncClient, user: str) -> list[dict[str, Any]] | None:
    """As `_told`, or None while the server answers 503 (its event log is away)."""
    response = await client.get(f"/api/channels/user:{user}/events", params={"after": "0"})
    if response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    return [e["data"] for e in response.json()["events"] if e["type"] == "notification"]


async def _listed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/notifications")
    assert response.status_code == 200, response.text
    return list(response.json()["notifications"])


@pytest.mark.parametrize("backend", ["memory", "redis"])
@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_keyed_retry_gets_the_first_notification(
    start_server: ServerFactory, request: pytest.FixtureRequest, launch: str, backend: str
) -> None:
    settings: dict[str, Any] = {"api_keys": f"tests:{API_KEY},other:{OTHER_KEY}"}
    if backend == "redis":
        settings["redis_url"] = request.getfixturevalue("redis_url")
    node = start_server(launch=launch, **settings)
    token, user = await sign_in(node.url, "alice")
    body = {"user": user["id"], "title": "order shipped"}
    keyed = {**node.service_headers, "Idempotency-Key": "order-7"}
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        first = await client.post("/api/notifications", json=body, headers=keyed)
        retry = await client.post("/api/notifications", json=body, headers=keyed)
        # A key is the publisher's: another service's same key is another notification.
        other = await client.post(
            "/api/notifications",
            json=body,
            headers={"Authorization": f"Bearer {OTHER_KEY}", "Idempotency-Key": "order-7"},
        )
        fresh = await client.post(
            "/api/notifications", json=body, headers={**keyed, "Idempotency-Key": "order-8"}
        )
        unkeyed = await client.post("/api/notifications", json=body, headers=node.service_headers)
        me = {"Authorization": f"Bearer {token}"}
        client.headers.update(me)
        listed = await _listed(client)
        told = await _told(client, user["id"])
    assert first.status_code == 201, first.text
    assert retry.status_code == 200, retry.text
    assert retry.json() == first.json()
    assert [other.status_code, fresh.status_code, unkeyed.status_code] == [201, 201, 201]
    ids = [r.json()["id"] for r in (first, other, fresh, unkeyed)]
    assert len(set(ids)) == 4
    assert sorted(n["id"] for n in listed) == sorted(ids)
    assert [t["id"] for t in told] == ids


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_bad_key_gets_the_publish_routes_400(
    start_server: ServerFactory, launch: str
) -> None:
    node = start_server(launch=launch)
    token, user = await sign_in(node.url, "alice")
    body = {"user": user["id"], "title": "hello"}
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        for key in ("", "k" * 201):
            headers = {**node.service_headers, "Idempotency-Key": key}
            sent = await client.post("/api/notifications", json=body, headers=headers)
            published = await client.post(
                f"/api/channels/user:{user['id']}/events",
                json={"type": "note", "data": 1},
                headers=headers,
            )
            assert sent.status_code == 400, sent.text
            assert sent.json() == published.json()
        client.headers.update({"Authorization": f"Bearer {token}"})
        assert await _listed(client) == []


@pytest.mark.parametrize(
    ("launch", "database"),
    [("python -m app", "sqlite"), ("uvicorn", "sqlite"), ("python -m app", "postgres")],
)
async def test_a_retry_after_a_lost_reply_ends_with_one_notification_and_one_event(
    start_server: ServerFactory,
    request: pytest.FixtureRequest,
    redis_url: str,
    redis_server: RedisServer,
    launch: str,
    database: str,
) -> None:
    mark = f"lost-notification-{launch.replace(' ', '-')}-{database}"
    settings: dict[str, Any] = {}
    if database == "postgres":
        settings["database_url"] = request.getfixturevalue("fresh_postgres_url")
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        redis_through = f"redis://{proxy.url_host_port}/0"
        node = start_server(launch=launch, redis_url=redis_through, **settings)
        token, user = await sign_in(node.url, "alice")
        body = {"user": user["id"], "title": mark}
        keyed = {**node.service_headers, "Idempotency-Key": "lost-1"}
        async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
            # A first append loads the append script into Redis (else the one below would
            # be an EVALSHA answered NOSCRIPT, which never runs).
            warm = await client.post(
                "/api/channels/public:warm/events",
                json={"type": "note", "data": 1},
                headers=node.service_headers,
            )
            assert warm.status_code == 201, warm.text
            # The append reaches Redis and is kept; its reply is held: the outcome is unknown.
            proxy.arm(mark.encode(), "blackhole", direction="down")
            lost = await client.post("/api/notifications", json=body, headers=keyed)
            assert lost.status_code == 503, lost.text
            proxy.set_mode("pass")
            me = {"Authorization": f"Bearer {token}"}
            client.headers.update(me)
            # Read once the node reaches Redis again (it fails fast meanwhile).
            told = await eventually(lambda: _told_if_up(client, user["id"]))
            # The lost reply's event was kept and delivered, its notification taken back (503).
            assert told is not None and len(told) == 1, told
            assert await _listed(client) == []
            del client.headers["Authorization"]
            retry = await client.post("/api/notifications", json=body, headers=keyed)
            again = await client.post("/api/notifications", json=body, headers=keyed)
            client.headers.update(me)
            assert await _told(client, user["id"]) == told  # no second event
            listed = await _listed(client)
            read = await client.post(f"/api/notifications/{told[0]['id']}/read")
    assert retry.status_code == 200, retry.text
    assert again.json() == retry.json()
    assert retry.json()["id"] == told[0]["id"]
    # The one notification is the one its event told of, and can be marked read.
    assert [n["id"] for n in listed] == [told[0]["id"]]
    assert read.status_code == 200 and read.json() == {"unread": 0}, read.text
