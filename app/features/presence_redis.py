"""Presence shared by every node through Redis (typing: typing_redis.py).

Each node keeps, per person and channel, one field in a Redis hash: its lease expiry and the
transports it sees, renewed every third of a lease. Scripts (presence_scripts.py) decide atomically
whether a join or a leave is the first or the last across nodes, so `presence.join` and
`presence.leave` are announced exactly once however many nodes a person's tabs are on. When a node
dies its fields stop being renewed; whichever node's reaper first finds a person with no live field
announces the leave.

Keys: `fc:pres:u:{channel}\\x1f{user}` (hash: `node:<id>` -> `<expiry ms>|<transports>`, `name`,
`since`), `fc:pres:c:{channel}` (sorted set: user -> latest expiry), `fc:pres:index` (sorted set:
`{channel}\\x1f{user}` -> latest expiry, for the reaper).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from .presence_scripts import JOIN, LEAVE, REAP
from .presence_shared import LocalMember, MemberEntry
from .redis_shared import SEP, RedisGuard, as_text, now_ms

INDEX = "fc:pres:index"
REAP_BATCH = 100
REAP_BATCHES = 50
"""A reap lists lapsed entries `REAP_BATCH` at a time, and goes on while a batch is full, up to
`REAP_BATCHES` batches (5,000 entries): a dead node's people leave within their lease and a tick
per 5,000 of their entries, not one per 100, and a tick still ends soon enough for this node's own
lease renewal."""


class RedisMembership:
    def __init__(
        self,
        redis: Redis,
        lease: float,
        node_id: str | None = None,
        guard: RedisGuard | None = None,
    ) -> None:
        self._redis = redis
        self._guard = guard or RedisGuard()
        self._lease_ms = int(lease * 1000)
        self.node = node_id or uuid.uuid4().hex[:12]
        self._join = redis.register_script(JOIN)
        self._leave = redis.register_script(LEAVE)
        self._reap = redis.register_script(REAP)

    @staticmethod
    def _keys(channel: str, user: str) -> list[str]:
        return [f"fc:pres:u:{channel}{SEP}{user}", f"fc:pres:c:{channel}", INDEX]

    async def joined(self, channel: str, user: str, member: LocalMember) -> bool:
        with self._guard("presence"):
            transports = ",".join(member.transports(time.monotonic()))
            first = await self._join(
                keys=self._keys(channel, user),
                args=[
                    self.node,
                    now_ms(),
                    self._lease_ms,
                    transports,
                    member.name,
                    user,
                    f"{channel}{SEP}{user}",
                ],
            )
            return bool(first)

    async def left(self, channel: str, user: str) -> bool:
        with self._guard("presence"):
            last = await self._leave(
                keys=self._keys(channel, user),
                args=[self.node, now_ms(), user, f"{channel}{SEP}{user}"],
            )
            return bool(last)

    async def refresh(self, entries: list[MemberEntry]) -> None:
        with self._guard("presence"):
            if not entries:
                return
            now = time.monotonic()
            expiry = now_ms() + self._lease_ms
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, user, member in entries:
                    transports = member.transports(now)
                    if not transports:
                        continue
                    hash_key, channel_key, _ = self._keys(channel, user)
                    pipe.hset(hash_key, f"node:{self.node}", f"{expiry}|{','.join(transports)}")
                    pipe.hsetnx(hash_key, "name", member.name)
                    pipe.hsetnx(hash_key, "since", int(member.since))
                    pipe.pexpire(hash_key, self._lease_ms * 4)
                    pipe.zadd(channel_key, {user: expiry}, gt=True)
                    pipe.zadd(INDEX, {f"{channel}{SEP}{user}": expiry}, gt=True)
                await pipe.execute()

    async def members(self, channel: str, local: dict[str, LocalMember]) -> list[dict[str, Any]]:
        with self._guard("presence"):
            now = now_ms()
            users = await self._redis.zrangebyscore(f"fc:pres:c:{channel}", now, "+inf")
            if not users:
                return []
            async with self._redis.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.hgetall(f"fc:pres:u:{channel}{SEP}{as_text(user)}")
                hashes = await pipe.execute()
            result = []
            for user, fields in zip(users, hashes, strict=True):
                transports: set[str] = set()
                name, since = "", 0.0
                for key, value in fields.items():
                    key, value = as_text(key), as_text(value)
                    if key == "name":
                        name = value
                    elif key == "since":
                        since = float(value)
                    elif key.startswith("node:"):
                        expiry, _, kinds = value.partition("|")
                        if float(expiry) > now:
                            transports.update(filter(None, kinds.split(",")))
                if transports:
                    result.append(
                        {
                            "user": as_text(user),
                            "name": name,
                            "transports": sorted(transports),
                            "since": since,
                        }
                    )
            return sorted(result, key=lambda m: m["since"])

    async def reap(self) -> AsyncIterator[tuple[str, str, str]]:
        now = now_ms()
        for _ in range(REAP_BATCHES):
            with self._guard("presence"):
                due = await self._redis.zrangebyscore(INDEX, "-inf", now, start=0, num=REAP_BATCH)
            for raw in due:
                entry = as_text(raw)
                channel, _, user = entry.partition(SEP)
                with self._guard("presence"):
                    name = await self._reap(keys=self._keys(channel, user), args=[now, user, entry])
                if name is not None:
                    yield channel, user, as_text(name)
            # Each entry listed left the range: reaped, or moved to its live lease's expiry.
            if len(due) < REAP_BATCH:
                return
