"""A channel's stream expiring under two real nodes (one per launch path): readers following the
channel on every transport receive every event published after the stream was created again, the
first ones included, and a cursor from before never names a new event (docs/scaling.md, "Idle
streams expire"). A `DEL` of the stream stands for its expiry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients import TRANSPORTS, Reader, make_reader
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import assert_exactly, service_publish
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import Servers

pytestmark = pytest.mark.redis


@pytest.fixture
def mixed_cluster(shared_redis: str, tmp_path: Path) -> Iterator[Cluster]:
    """Node a runs `python -m app`, node b plain `uvicorn app.main:app`."""
    servers = Servers(tmp_path)
    try:
        a = servers.start(redis_url=shared_redis)
        b = servers.start(redis_url=shared_redis, launch="uvicorn")
        yield Cluster(a, b, servers)
    finally:
        servers.stop_all()


async def publish(client: httpx.AsyncClient, node: Any, channel: str, n: int) -> dict[str, Any]:
    response = await service_publish(client, node, channel, n)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_readers_on_both_launch_paths_follow_a_channel_across_its_stream_expiring(
    mixed_cluster: Cluster, redis_server: RedisServer
) -> None:
    a, b = mixed_cluster.nodes
    channel = f"public:expiry-{uuid.uuid4().hex[:8]}"
    readers: list[Reader] = []
    try:
        for node in (a, b):
            for transport in TRANSPORTS:
                readers.append(await make_reader(transport, node.url, channel).start())
        async with httpx.AsyncClient(timeout=10) as client:
            old = [await publish(client, (a, b)[n % 2], channel, n) for n in range(5)]
            for reader in readers:
                await reader.wait_for(5)
            with redis_server.client() as direct:
                assert direct.delete(f"fourcast:ch:{channel}") == 1
                assert direct.pttl(f"fourcast:ch:{channel}") == -2
            new = [await publish(client, (b, a)[n % 2], channel, 5 + n) for n in range(3)]
            assert min(int(e["id"]) for e in new) > max(int(e["id"]) for e in old)
            for reader in readers:
                await reader.wait_for(8)
            for reader in readers:
                # Every event once, in order, under its own cursor; a live stream never needed
                # a reset (nothing was lost: the stream was only idle).
                assert_exactly(reader.durable, old + new)
                if reader.transport in ("sse", "websocket"):
                    assert reader.resets == 0, reader.transport
            with redis_server.client() as direct:
                assert direct.pttl(f"fourcast:ch:{channel}") > 0
            for node in (a, b):
                for i, event in enumerate(old):
                    response = await client.get(
                        f"{node.url}/api/channels/{channel}/events", params={"after": event["id"]}
                    )
                    body = response.json()
                    # A reset, then what the stream keeps; or, from a node that saw the last old
                    # entry and the first new one next to it, what truly followed the cursor.
                    want = new if body["reset"] else old[i + 1 :] + new
                    assert_exactly(body["events"], want)
    finally:
        for reader in readers:
            await reader.stop()
    mixed_cluster.assert_alive()
