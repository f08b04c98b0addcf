"""Room history paged with `before` on Redis, while the SQL archive is behind.

The Redis backend archives after acknowledging, lingering to gather a batch: messages just sent
may be in Redis only. The first page always merged them in; older pages read SQL only, so a
message no longer on the newest page but not yet archived was skipped. The archive lingers for
10 s here and the test checks it is still behind after paging (the archive-lag gauge), so the
pages are read while SQL holds none of the messages, whatever the machine's speed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.clients import sign_in
from tests.fixtures.server import ServerFactory

COUNT = 6


def _lag(metrics: str) -> float:
    line = next(ln for ln in metrics.splitlines() if ln.startswith("fourcast_archive_lag_events "))
    return float(line.split()[1])


@pytest.mark.redis
async def test_pages_before_the_newest_include_messages_not_yet_archived(
    start_server: ServerFactory, redis_url: str
) -> None:
    server = start_server(redis_url=redis_url, archive_linger_ms=10_000)
    token, _ = await sign_in(server.url, "pat")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        assert (await client.post("/api/rooms", json={"name": "paging"})).status_code == 201
        assert (await client.post("/api/rooms/paging/join")).status_code == 200
        for n in range(COUNT):
            response = await client.post(
                "/api/channels/room:paging/events",
                json={"type": "chat.message", "data": {"text": f"m{n}"}},
            )
            assert response.status_code == 201, response.text
        pages: list[list[str]] = []
        params: dict[str, Any] = {"limit": 2}
        while True:
            page = (await client.get("/api/rooms/paging/messages", params=params)).json()
            pages.append([m["data"]["text"] for m in page["messages"]])
            if page["before"] is None:
                break
            assert len(pages) <= COUNT, pages
            params["before"] = page["before"]
        lag = _lag((await client.get("/metrics", headers=server.service_headers)).text)
    assert lag >= COUNT, "the archive caught up while paging: the test proved nothing"
    assert pages == [["m4", "m5"], ["m2", "m3"], ["m0", "m1"]]
