"""An Idempotency-Key outlives the server (in-process bus + SQL journal): the key is kept with the
event, in its transaction, so a retry after a kill -9 and a restart gets the first event back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.server import ServerFactory

CHANNEL = "public:idem-restart"


@pytest.fixture(
    params=[("sqlite", "python -m app"), ("sqlite", "uvicorn"), ("postgres", "python -m app")],
    ids=["sqlite", "sqlite-uvicorn", "postgres"],
)
def settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    database, launch = request.param
    if database == "sqlite":
        return {"launch": launch}
    return {"launch": launch, "database_url": request.getfixturevalue("fresh_postgres_url")}


async def test_a_retry_after_kill_9_and_restart_gets_the_first_event(
    start_server: ServerFactory, settings: dict[str, Any]
) -> None:
    server = start_server(**settings)
    headers = {**server.service_headers, "Idempotency-Key": "order-7"}
    body = {"type": "order", "data": {"n": 7}}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        first = await client.post(f"/api/channels/{CHANNEL}/events", json=body, headers=headers)
        # Another keyed event, so the replay must pick the right one, not the latest.
        other = await client.post(
            f"/api/channels/{CHANNEL}/events",
            json={"type": "order", "data": {"n": 8}},
            headers={**headers, "Idempotency-Key": "order-8"},
        )
    assert (first.status_code, other.status_code) == (201, 201)
    server.kill()  # SIGKILL: the memory of keys is gone; only the journal remains

    restarted = start_server(port=server.port, data_dir=server.data_dir, **settings)
    async with httpx.AsyncClient(base_url=restarted.url, timeout=10) as client:
        retry = await client.post(f"/api/channels/{CHANNEL}/events", json=body, headers=headers)
        again = await client.post(f"/api/channels/{CHANNEL}/events", json=body, headers=headers)
        # A new key is a new publish.
        fresh = await client.post(
            f"/api/channels/{CHANNEL}/events",
            json=body,
            headers={**headers, "Idempotency-Key": "order-9"},
        )
        history = (
            await client.get(f"/api/channels/{CHANNEL}/events", params={"after": "0"})
        ).json()["events"]
    assert retry.status_code == 200, retry.text  # replayed, not created
    assert retry.json() == first.json()
    assert again.status_code == 200 and again.json() == first.json()
    assert fresh.status_code == 201
    assert [e["data"]["n"] for e in history] == [7, 8, 7]
    assert [e["id"] for e in history[:2]] == [first.json()["id"], other.json()["id"]]
