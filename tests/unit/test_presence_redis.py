"""Presence shared through a real redis-server: races between a join and the lease renewal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.bus import Bus, Sink
from app.features.presence import Presence
from app.features.presence_redis import RedisMembership
from app.features.presence_shared import LocalMember
from app.features.publishing import Publisher
from app.features.redis_shared import SEP, now_ms
from app.identity.limits import TokenBuckets
from app.identity.principal import Principal

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


class Recorded(HeldRenewal):
    """`HeldRenewal` that also notes when a join is asked of Redis and when it is answered."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.join_asked = asyncio.Event()
        self.join_answered = asyncio.Event()

    async def joined(self, channel: str, user: str, member: LocalMember) -> bool:
        self.join_asked.set()
        try:
            return await super().joined(channel, user, member)
        finally:
            self.join_answered.set()


async def announced(sink: Sink, count: int) -> list[tuple[str, str]]:
    """The first `count` announcements (join or leave, and whose) that reach `sink`."""
    got: list[tuple[str, str]] = []
    async with asyncio.timeout(10):
        while len(got) < count:
            for item in await sink.take():
                if not isinstance(item, tuple):
                    got.append((item.type, orjson.loads(item.data)["user"]))
    return got


async def test_a_person_back_while_their_leave_waits_is_announced_again(
    redis: Redis, bus: Bus
) -> None:
    membership = Recorded(redis)
    presence = Presence(Publisher(bus, TokenBuckets(100, 100), 65536), LEASE, membership)
    sink = Sink(1000, 1 << 20)
    async with bus.subscription(ROOM, sink, None):
        lease = await presence.connect(ROOM, ALICE, "websocket")
        membership.join_asked.clear()
        renewing = asyncio.create_task(presence.renew_leases())
        await membership.entered.wait()  # a renewal carrying Alice is on its way
        leaving = asyncio.create_task(presence.disconnect(lease))  # her leave waits for it
        back = asyncio.create_task(presence.connect(ROOM, ALICE, "sse"))  # she reloads
        for _ in range(10):  # loop steps, no clock: the arrival asks Redis, or waits
            await asyncio.sleep(0)
        if membership.join_asked.is_set():
            await membership.join_answered.wait()  # sent before the leave: let it land
        membership.gate.set()
        await asyncio.gather(renewing, leaving, back)
        assert await announced(sink, 3) == [
            ("presence.join", "alice"),
            ("presence.leave", "alice"),
            ("presence.join", "alice"),
        ]
        assert [m["user"] for m in await presence.members(ROOM)] == ["alice"]


class ReplyHeld(RedisMembership):
    """The join has run in Redis; its answer is held on the way back."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis, LEASE, node_id="a")
        self.ran = asyncio.Event()
        self.gate = asyncio.Event()

    async def joined(self, channel: str, user: str, member: LocalMember) -> bool:
        first = await super().joined(channel, user, member)
        self.ran.set()
        await self.gate.wait()
        return first


async def test_a_join_decided_in_redis_is_announced_though_its_client_left(
    redis: Redis, bus: Bus
) -> None:
    membership = ReplyHeld(redis)
    presence = Presence(Publisher(bus, TokenBuckets(100, 100), 65536), LEASE, membership, grace=5)
    sink = Sink(1000, 1 << 20)
    async with bus.subscription(ROOM, sink, None):
        connecting = asyncio.create_task(presence.connect(ROOM, ALICE, "sse"))
        await membership.ran.wait()
        connecting.cancel()  # the stream's client left while the answer was on its way
        with pytest.raises(asyncio.CancelledError):
            await connecting
        membership.gate.set()
        assert await announced(sink, 1) == [("presence.join", "alice")]
        await presence.connect(ROOM, ALICE, "sse")  # EventSource reconnects
        await presence.reap()
        assert [m["user"] for m in await presence.members(ROOM)] == ["alice"]
        assert await sink.take(timeout=0.05) == []  # nothing more: no leave, no second join


async def test_a_reaped_leave_goes_out_before_a_join_decided_after_it(
    redis: Redis, bus: Bus
) -> None:
    # A dead node's fields, lapsed a second ago (Alice's first): written as its JOIN writes.
    lapsed = now_ms() - 1000
    for offset, (user, name) in enumerate([("alice", "Alice"), ("bob", "Bob")]):
        hash_key, channel_key, index = RedisMembership._keys(ROOM, user)
        await redis.hset(
            hash_key, mapping={"node:dead": f"{lapsed + offset}|websocket", "name": name}
        )
        await redis.zadd(channel_key, {user: lapsed + offset})
        await redis.zadd(index, {f"{ROOM}{SEP}{user}": lapsed + offset})
    live = RedisMembership(redis, LEASE, node_id="a")
    reap_one = live._reap
    calls: list[object] = []
    second_held, gate = asyncio.Event(), asyncio.Event()

    async def held_second(**kwargs: Any) -> Any:
        calls.append(kwargs)
        if len(calls) == 2:  # Bob's REAP is held; Alice's has been decided
            second_held.set()
            await gate.wait()
        return await reap_one(**kwargs)

    live._reap = held_second  # type: ignore[assignment]
    presence = Presence(Publisher(bus, TokenBuckets(100, 100), 65536), LEASE, live, grace=5)
    sink = Sink(1000, 1 << 20)
    async with bus.subscription(ROOM, sink, None):
        reaping = asyncio.create_task(presence.reap())
        await second_held.wait()
        await presence.connect(ROOM, ALICE, "websocket")  # Alice is back, on a live node
        gate.set()
        await reaping
        assert await announced(sink, 3) == [
            ("presence.leave", "alice"),
            ("presence.join", "alice"),
            ("presence.leave", "bob"),
        ]


async def test_two_nodes_reaping_one_lapsed_person_announce_one_leave(redis: Redis) -> None:
    # A dead node's field for Alice, lapsed a second ago; two live nodes' reapers both list it.
    lapsed = now_ms() - 1000
    hash_key, channel_key, index = RedisMembership._keys(ROOM, "alice")
    await redis.hset(hash_key, mapping={"node:dead": f"{lapsed}|websocket", "name": "Alice"})
    await redis.zadd(channel_key, {"alice": lapsed})
    await redis.zadd(index, {f"{ROOM}{SEP}alice": lapsed})
    nodes = [RedisMembership(redis, LEASE, node_id=n) for n in ("a", "b")]
    listed = asyncio.Barrier(2)
    for node in nodes:
        script = node._reap

        async def after_both_listed(script: Any = script, **kwargs: Any) -> Any:
            await listed.wait()  # each has read the index: both hold Alice's entry
            return await script(**kwargs)

        node._reap = after_both_listed  # type: ignore[assignment]

    async def reaped(node: RedisMembership) -> list[tuple[str, str, str]]:
        return [leave async for leave in node.reap()]

    leaves = await asyncio.gather(*(reaped(node) for node in nodes))
    assert sorted(leave for found in leaves for leave in found) == [(ROOM, "alice", "Alice")]
    assert await redis.exists(hash_key) == 0
    assert await redis.zcard(index) == 0


async def test_one_reap_announces_more_than_a_batch_of_a_dead_nodes_people(redis: Redis) -> None:
    # A dead node's fields for 250 people (one room each), all lapsed: one reaper tick lists them
    # 100 at a time, and went no further than the first 100, so a node holding thousands left
    # them present in everyone's lists for a tick per hundred, long past their lease.
    lapsed = now_ms() - 1000
    people = [f"p{n:03}" for n in range(250)]
    async with redis.pipeline(transaction=False) as pipe:
        for user in people:
            hash_key, channel_key, index = RedisMembership._keys(f"room:r{user}", user)
            pipe.hset(hash_key, mapping={"node:dead": f"{lapsed}|websocket", "name": user})
            pipe.zadd(channel_key, {user: lapsed})
            pipe.zadd(index, {f"room:r{user}{SEP}{user}": lapsed})
        await pipe.execute()
    live = RedisMembership(redis, LEASE, node_id="a")
    leaves = [leave async for leave in live.reap()]
    assert sorted(leaves) == [(f"room:r{user}", user, user) for user in people]
    assert await redis.zcard("fc:pres:index") == 0
