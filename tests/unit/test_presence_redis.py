"""Presence shared through a real redis-server: races between a join and the lease renewal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.bus import Bus, NullJournal, Sink, create_bus
from app.features.presence import Presence
from app.features.presence_redis import RedisMembership
from app.features.presence_shared import LocalMember
from app.features.publishing import Publisher
from app.identity.limits import TokenBuckets
from app.identity.principal import Principal
from app.settings import Settings

ALICE = Principal("user", "alice", "Alice")
ROOM = "room:lobby"
LEASE = 30.0


class HeldJoin(RedisMembership):
    """Redis membership whose `joined` waits at a gate before it reaches Redis: the window in
    which a join is in flight, held open for as long as the test needs."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis, LEASE, node_id="a")
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def joined(self, channel: str, user: str, member: LocalMember) -> bool:
        self.entered.set()
        await self.gate.wait()
        return await super().joined(channel, user, member)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def bus() -> AsyncIterator[Bus]:
    bus = create_bus(Settings(), NullJournal())
    await bus.start()
    yield bus
    await bus.stop()


async def joins(bus: Bus, sink: Sink) -> list[str]:
    items = await sink.take(timeout=0.05)
    return [
        orjson.loads(item.data)["user"]
        for item in items
        if not isinstance(item, tuple) and item.type == "presence.join"
    ]


@pytest.mark.parametrize("during_join", ["renewal", "second tab"])
async def test_a_join_is_announced_when_a_renewal_runs_while_it_is_in_flight(
    redis: Redis, bus: Bus, during_join: str
) -> None:
    membership = HeldJoin(redis)
    presence = Presence(Publisher(bus, TokenBuckets(100, 100), 65536), LEASE, membership)
    sink = Sink(1000, 1 << 20)
    async with bus.subscription(ROOM, sink, None):
        arriving = asyncio.create_task(presence.connect(ROOM, ALICE, "websocket"))
        await membership.entered.wait()
        # While the join is on its way, this node renews what it sees: the housekeeping tick,
        # or the person's second tab on this node.
        if during_join == "renewal":
            await presence.renew_leases()
        else:
            await presence.connect(ROOM, ALICE, "sse")
        membership.gate.set()
        await arriving
        assert await joins(bus, sink) == ["alice"]
        members = await presence.members(ROOM)
        assert [m["user"] for m in members] == ["alice"]
        # Once the join is decided, the renewal writes this node's lease and both transports.
        await presence.renew_leases()
        members = await presence.members(ROOM)
        assert members[0]["transports"] == (
            ["websocket"] if during_join == "renewal" else ["sse", "websocket"]
        )


class HeldRenewal(RedisMembership):
    """Redis membership whose lease renewal, its commands written, waits at a gate before they
    are sent (where a real renewal awaits), and which notes whether a leave was sent while a
    renewal was on its way."""

    def __init__(self, redis: Redis) -> None:
        owner = self

        class HeldPipeline(Pipeline):
            async def execute(self, raise_on_error: bool = True) -> list[Any]:
                owner.renewing = True
                owner.entered.set()
                try:
                    await owner.gate.wait()
                    return await super().execute(raise_on_error)
                finally:
                    owner.renewing = False

        class HeldRedis(Redis):
            def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Any:
                return HeldPipeline(
                    self.connection_pool, self.response_callbacks, transaction, shard_hint
                )

        super().__init__(HeldRedis(connection_pool=redis.connection_pool), LEASE, node_id="a")
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.renewing = False
        self.left_while_renewing: list[bool] = []

    async def left(self, channel: str, user: str) -> bool:
        self.left_while_renewing.append(self.renewing)
        return await super().left(channel, user)


async def test_a_leave_waits_for_a_renewal_on_its_way(redis: Redis, bus: Bus) -> None:
    membership = HeldRenewal(redis)
    presence = Presence(Publisher(bus, TokenBuckets(100, 100), 65536), LEASE, membership)
    sink = Sink(1000, 1 << 20)
    async with bus.subscription(ROOM, sink, None):
        lease = await presence.connect(ROOM, ALICE, "websocket")
        renewing = asyncio.create_task(presence.renew_leases())
        await membership.entered.wait()  # the renewal carries Alice, and is held
        leaving = asyncio.create_task(presence.disconnect(lease))
        await asyncio.sleep(0)  # the leave runs up to its first wait (no clock involved)
        membership.gate.set()
        await renewing
        await leaving
        assert membership.left_while_renewing == [False]
        # No lease written back after the leave: Alice is gone from Redis, not a ghost.
        assert await presence.members(ROOM) == []
        items = await sink.take(timeout=0.05)
        kinds = [item.type for item in items if not isinstance(item, tuple)]
        assert kinds == ["presence.join", "presence.leave"]
