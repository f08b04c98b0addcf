"""Acknowledged means on disk: SIGKILL right after 300 acknowledgements loses nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.clients import TRANSPORTS, make_reader, publish_many
from tests.fixtures.server import ServerFactory


@pytest.fixture(params=["sqlite", "postgres"])
def database_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("fresh_postgres_url")}


async def test_sigkill_after_acknowledged_publishes_loses_nothing(
    start_server: ServerFactory, database_settings: dict[str, Any]
) -> None:
    server = start_server(**database_settings)
    channel = "public:durable"
    published = await publish_many(server.url, channel, 300, server.service_headers, concurrency=8)
    server.kill()  # SIGKILL: no flush, no goodbye

    restarted = start_server(port=server.port, data_dir=server.data_dir, **database_settings)
    async with httpx.AsyncClient(base_url=restarted.url) as client:
        body = (
            await client.get(
                f"/api/channels/{channel}/events", params={"after": "0", "limit": 1000}
            )
        ).json()
    assert body["reset"] is False
    served = {e["id"]: e for e in body["events"]}
    assert served == {e["id"]: e for e in published}  # same cursors, same events
    assert len(body["events"]) == 300

    # A reader resuming from a cursor taken before the kill gets exactly the rest, on any transport.
    ordered = body["events"]
    cursor = ordered[99]["id"]
    for transport in TRANSPORTS:
        reader = await make_reader(transport, restarted.url, channel, after=cursor).start()
        await reader.wait_for(200)
        await reader.stop()
        assert [e["id"] for e in reader.durable] == [e["id"] for e in ordered[100:]], transport

    # New events continue the same sequence of cursors.
    more = await publish_many(restarted.url, channel, 1, restarted.service_headers, start=301)
    async with httpx.AsyncClient(base_url=restarted.url) as client:
        after = (
            await client.get(f"/api/channels/{channel}/events", params={"after": ordered[-1]["id"]})
        ).json()
    assert [e["id"] for e in after["events"]] == [more[0]["id"]]
