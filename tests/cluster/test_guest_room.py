"""Guests are counted for the whole cluster (whose nodes hold the same revocations): sign-ups
spread over nodes fill one room, and what is left of `max_revocations` stays for others."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.cluster.conftest import start_cluster
from tests.fixtures.redis import RedisServer


async def test_guests_signed_up_on_two_nodes_share_one_room(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    nodes = start_cluster(tmp_path, own_redis.url, max_revocations=10)  # 8 of them guests'
    try:
        a, b = nodes.nodes
        tokens = []
        for url in (a.url, b.url):
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                for i in range(4):
                    response = await client.post("/api/session", json={"name": f"g{i}"})
                    assert response.status_code == 201, response.text
                    tokens.append(response.json()["token"])
        for url in (a.url, b.url):
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                refused = await client.post("/api/session", json={"name": "one too many"})
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"]["code"] == "guest_signups_full"
        async with httpx.AsyncClient(base_url=b.url, timeout=10) as client:
            for token in tokens:
                out = await client.delete(
                    "/api/session", headers={"Authorization": f"Bearer {token}"}
                )
                assert out.status_code == 204, out.text
            # Every node holds the 8 guests' sign-outs: room is left for two more people.
            for person in ("someone", "someone-else"):
                revoked = await client.delete(
                    f"/api/people/{person}/sessions", headers=b.service_headers
                )
                assert revoked.status_code == 204, revoked.text
    finally:
        nodes.servers.stop_all()
