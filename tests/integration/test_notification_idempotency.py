"""`POST /api/notifications` with an `Idempotency-Key` (docs/protocol.md): a service's retry gets
the first notification (200), never a second one, on both bus backends and both launch paths."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.clients import sign_in
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
