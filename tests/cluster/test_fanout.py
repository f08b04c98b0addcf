"""Two nodes on one Redis: any node serves any reader, and cursors are portable between them."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import pytest

from tests.clients import TRANSPORTS, make_reader, publish_many
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import Resuming, assert_exactly, head, numbers, service_publish
from tests.fixtures.server import API_KEY

pytestmark = pytest.mark.redis

SERVICE = {"Authorization": f"Bearer {API_KEY}"}


@pytest.mark.parametrize("direction", ["a-to-b", "b-to-a"])
async def test_events_published_on_one_node_reach_every_transport_on_the_other(
    cluster: Cluster, direction: str
) -> None:
    source, target = (cluster.a, cluster.b) if direction == "a-to-b" else (cluster.b, cluster.a)
    channel = f"public:fanout-{direction}"
    readers = [
        await make_reader(transport, target.url, channel, **_poll_kwargs(transport)).start()
        for transport in TRANSPORTS
    ]
    try:
        published = await asyncio.wait_for(
            publish_many(source.url, channel, 300, SERVICE, concurrency=4), 60
        )
        # Concurrent publishers: the log's order is the cursor order.
        published.sort(key=lambda e: int(e["id"]))
        for reader in readers:
            await reader.wait_for(300, timeout=30)
        # A little longer for anything extra (a duplicate) to show up before checking.
        await asyncio.sleep(0.3)
        for reader in readers:
            assert reader.resets == 0, reader.transport
            assert_exactly(reader.durable, published)
    finally:
        for reader in readers:
            await reader.stop()
    cluster.assert_alive()


def _poll_kwargs(transport: str) -> dict[str, Any]:
    return {"interval": 0.05, "limit": 100} if transport == "shortpoll" else {}


@pytest.mark.parametrize("wait", [0, 2], ids=["short", "long"])
async def test_a_poller_alternating_nodes_on_every_request_misses_nothing(
    cluster: Cluster, wait: int
) -> None:
    channel = f"public:alternate-{wait}"
    total = 200
    cursor = await head(cluster.a.url, channel)
    received: list[dict[str, Any]] = []
    requests = {cluster.a.url: 0, cluster.b.url: 0}

    async def poller() -> None:
        nonlocal cursor
        async with httpx.AsyncClient(timeout=wait + 10) as client:
            for url in itertools.cycle(cluster.urls):
                params: dict[str, Any] = {"after": cursor, "limit": 7}
                if wait:
                    params["wait"] = wait
                response = await client.get(f"{url}/api/channels/{channel}/events", params=params)
                requests[url] += 1
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["reset"] is False
                received.extend(body["events"])
                cursor = body["next"]
                if len(received) >= total:
                    return
                if not body["events"]:
                    await asyncio.sleep(0.01)  # pacing an empty short poll

    async def publisher() -> list[dict[str, Any]]:
        # Published through both nodes, in turns, while the poller reads.
        events = []
        async with httpx.AsyncClient(timeout=10) as client:
            for n in range(1, total + 1):
                node = cluster.nodes[n % 2]
                response = await service_publish(client, node, channel, n)
                assert response.status_code == 201, response.text
                events.append(response.json())
                if n % 20 == 0:
                    await asyncio.sleep(0.02)  # let the poller catch up now and then
        return events

    reading = asyncio.create_task(poller())
    published = await asyncio.wait_for(publisher(), 60)
    await asyncio.wait_for(reading, 30)
    assert numbers(published) == list(range(1, total + 1))
    assert_exactly(received, published)
    assert min(requests.values()) >= total // 7 // 2, requests
    cluster.assert_alive()


@pytest.mark.parametrize("transport", ["sse", "websocket", "longpoll"])
async def test_a_reader_reconnecting_to_the_other_node_resumes_from_its_cursor(
    cluster: Cluster, transport: str
) -> None:
    """The reader hops to the other node every 25 events, while events keep coming."""
    channel = f"public:hop-{transport}"
    total = 150
    after = await head(cluster.a.url, channel)
    reader = Resuming(transport, cluster.urls, channel, after=after).start()
    published: list[dict[str, Any]] = []

    async def publisher() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            for n in range(1, total + 1):
                response = await service_publish(client, cluster.nodes[n % 2], channel, n)
                assert response.status_code == 201, response.text
                published.append(response.json())
                await asyncio.sleep(0.005)

    publishing = asyncio.create_task(publisher())
    try:
        hops = 0
        for mark in range(25, total, 25):
            await reader.wait_for(mark, timeout=20)
            await reader.reconnect()
            hops += 1
        await asyncio.wait_for(publishing, 60)
        await reader.wait_for(total, timeout=20)
        await asyncio.sleep(0.3)  # room for a duplicate to show up
    finally:
        publishing.cancel()
        await reader.stop()
    assert reader.incarnations > hops
    assert {cluster.a.url, cluster.b.url} <= set(reader.nodes_used)
    assert reader.resets == 0
    assert_exactly(reader.durable, published)


async def test_an_idempotency_key_used_on_both_nodes_gives_one_event(cluster: Cluster) -> None:
    channel = "public:idempotent"
    key = "cluster-order-42"
    async with httpx.AsyncClient(timeout=10, headers=SERVICE) as client:
        first = await client.post(
            f"{cluster.a.url}/api/channels/{channel}/events",
            json={"type": "order", "data": {"n": 1}},
            headers={"Idempotency-Key": key},
        )
        again = await client.post(
            f"{cluster.b.url}/api/channels/{channel}/events",
            json={"type": "order", "data": {"n": 1}},
            headers={"Idempotency-Key": key},
        )
        assert first.status_code == 201, first.text
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        history = await client.get(f"{cluster.b.url}/api/channels/{channel}/events")
    assert [e["data"]["n"] for e in history.json()["events"]] == [1]


async def test_an_idempotency_key_racing_on_both_nodes_gives_one_event(cluster: Cluster) -> None:
    """A client whose publish timed out on A retries on B while A's is still in flight."""
    channel = "public:idempotent-race"
    async with httpx.AsyncClient(timeout=10, headers=SERVICE) as client:
        for n in range(1, 6):
            racing = await asyncio.gather(
                *(
                    client.post(
                        f"{node.url}/api/channels/{channel}/events",
                        json={"type": "order", "data": {"n": n}},
                        headers={"Idempotency-Key": f"race-{n}"},
                    )
                    for node in cluster.nodes
                )
            )
            assert sorted(r.status_code for r in racing) == [200, 201], [r.text for r in racing]
            assert racing[0].json() == racing[1].json()
        history = await client.get(f"{cluster.b.url}/api/channels/{channel}/events")
    assert [e["data"]["n"] for e in history.json()["events"]] == [1, 2, 3, 4, 5]
