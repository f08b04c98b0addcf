"""Room history in publish order across Redis epochs.

The SQL archive keeps each event under its cursor, `epoch << 36 | seq`, and a room's history is
ordered (and paged with `before`) by cursor. A new epoch drawn below the old one would put the
messages published after Redis lost its data before the older ones. Here the epoch in force is
set near the top of the range first, so a new epoch that did not go above it would be below it.

The history is read over REST only, which both launch paths serve alike: one `python -m app` node.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.bus.redis.streams import split_cursor
from tests.clients import eventually, sign_in
from tests.cluster.conftest import HIGH
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import ServerProcess, Servers

pytestmark = pytest.mark.redis

ALL = str(2**63 - 1)
"""A `before` above every cursor: the page then comes from the SQL archive alone."""


class Room:
    """One person posting chat messages to a room and reading its history."""

    def __init__(self, node: ServerProcess, token: str, name: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=node.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        self.name = name

    async def post(self, text: str) -> dict[str, Any]:
        response = await self.client.post(
            f"/api/channels/room:{self.name}/events",
            json={"type": "chat.message", "data": {"text": text}},
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def page(self, **params: object) -> dict[str, Any]:
        response = await self.client.get(f"/api/rooms/{self.name}/messages", params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def archived(self, count: int) -> None:
        async def done() -> bool:
            return len((await self.page(before=ALL, limit=500))["messages"]) >= count

        await eventually(done, timeout=20)

    async def paged_texts(self, limit: int) -> list[str]:
        """Every message, oldest first, read newest page first and then older with `before`."""
        pages: list[list[str]] = []
        params: dict[str, object] = {"limit": limit}
        while True:
            page = await self.page(**params)
            pages.append([m["data"]["text"] for m in page["messages"]])
            if page["before"] is None:
                break
            params["before"] = page["before"]
        return [text for page in reversed(pages) for text in page]


async def check_order(room: Room, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """Archived, the history is in publish order, whole and once, on every page size."""
    texts = [e["data"]["text"] for e in old + new]
    await room.archived(len(texts))
    newest = await room.page()
    assert [m["data"]["text"] for m in newest["messages"]] == texts
    for limit in (1, 2, 4):
        assert await room.paged_texts(limit) == texts, limit
    old_epoch = split_cursor(int(old[-1]["id"]))[0]
    new_epoch = split_cursor(int(new[0]["id"]))[0]
    assert old_epoch == HIGH
    assert new_epoch > old_epoch, (old_epoch, new_epoch)


async def test_history_stays_in_publish_order_after_redis_is_flushed(
    own_redis: RedisServer, servers: Servers
) -> None:
    node = servers.start(redis_url=own_redis.url, publish_rate=100, publish_burst=1000)
    token, _ = await sign_in(node.url, "ann")
    room = Room(node, token, "flushed")
    async with room.client:
        assert (await room.client.post("/api/rooms", json={"name": room.name})).status_code == 201
        old = [await room.post(f"old{n}") for n in range(3)]
        await room.archived(3)
        await asyncio.to_thread(own_redis.flush)
        new = [await room.post(f"new{n}") for n in range(3)]
        await check_order(room, old, new)


async def test_history_stays_in_publish_order_when_redis_and_the_node_restart_empty(
    own_redis: RedisServer, servers: Servers
) -> None:
    """Nothing but the SQL archive remembers the old epoch: the node reads it as it starts."""
    node = servers.start(redis_url=own_redis.url, publish_rate=100, publish_burst=1000)
    token, _ = await sign_in(node.url, "bob")
    room = Room(node, token, "restarted")
    async with room.client:
        assert (await room.client.post("/api/rooms", json={"name": room.name})).status_code == 201
        old = [await room.post(f"old{n}") for n in range(3)]
        await room.archived(3)
        await asyncio.to_thread(node.stop)
        await asyncio.to_thread(own_redis.restart_empty)
        await asyncio.to_thread(node.start)
        new = [await room.post(f"new{n}") for n in range(3)]
        await check_order(room, old, new)
