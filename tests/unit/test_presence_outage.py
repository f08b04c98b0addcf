"""Presence through a real redis-server after Redis was away for longer than a lease: the people
still connected are not announced gone, and a dead node's people still are, a lease later."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.bus import Bus, Sink
from app.errors import Unavailable
from app.features.presence import Presence
from app.features.presence_redis import RedisMembership
from app.features.presence_shared import MemberEntry
from app.features.publishing import Publisher
from app.features.redis_shared import SEP, now_ms
from app.identity.limits import TokenBuckets
from app.identity.principal import Principal
from tests.unit.test_presence_redis import announced

ALICE = Principal("user", "alice", "Alice")
ROOM = "room:lobby"
LEASE = 30.0


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


class Away(RedisMembership):
    """Redis membership whose renewals and reaper fail, as through the guard, while `away`."""

    away = False

    async def refresh(self, entries: list[MemberEntry]) -> None:
        if self.away:
            raise Unavailable("presence unavailable: redis is away")
        await super().refresh(entries)

    async def reap(self) -> AsyncIterator[tuple[str, str, str]]:
        if self.away:
            raise Unavailable("presence unavailable: redis is away")
        async for leave in super().reap():
            yield leave


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def lapse(redis: Redis, user: str, node: str) -> None:
    """`user`'s lease on `node` ran out a second ago (the outage outlasted it)."""
    lapsed = now_ms() - 1000
    hash_key, channel_key, index = RedisMembership._keys(ROOM, user)
    await redis.hset(hash_key, mapping={f"node:{node}": f"{lapsed}|websocket", "name": user})
    await redis.zadd(channel_key, {user: lapsed})
    await redis.zadd(index, {f"{ROOM}{SEP}{user}": lapsed})


async def test_people_still_connected_are_not_reaped_after_redis_was_away(
    redis: Redis, bus: Bus
) -> None:
    membership = Away(redis, LEASE, node_id="a")
    publisher = Publisher(bus, TokenBuckets(100, 100), 65536)
    clock = Clock()
    presence = Presence(publisher, LEASE, membership, clock=clock)
    sink = Sink(1000, 1 << 20)
    async with bus.subscription(ROOM, sink, None):
        await presence.connect(ROOM, ALICE, "websocket")
        assert await announced(sink, 1) == [("presence.join", "alice")]

        membership.away = True
        with pytest.raises(Unavailable):
            await presence.tick()
        clock.now += LEASE  # still away: nothing reaped, a renewal tried and failed
        with pytest.raises(Unavailable):
            await presence.tick()
        # Meanwhile every lease lapsed: Alice's on this live node, and Bob's on a dead one.
        await lapse(redis, "alice", "a")
        await lapse(redis, "bob", "dead")

        membership.away = False  # Redis is back
        clock.now += 1
        await presence.tick()
        assert await sink.take(timeout=0.05) == []  # no leave: Alice never went
        # Her lease is renewed in Redis, where every node's reaper looks.
        assert [m["user"] for m in await presence.members(ROOM)] == ["alice"]

        clock.now += LEASE - 1
        await presence.tick()
        assert await sink.take(timeout=0.05) == []  # the others may still be renewing
        # A lease after it was back, the dead node's people are reaped (Alice is not).
        clock.now += 1
        await presence.tick()
        assert await announced(sink, 1) == [("presence.leave", "bob")]
        assert await sink.take(timeout=0.05) == []
