"""Presence and typing shared by every node through Redis.

Each node keeps, per person and channel, one field in a Redis hash: its lease expiry and the
transports it sees, renewed every third of a lease. Scripts (presence_scripts.py) decide atomically
whether a join or a leave is the first or the last across nodes, so `presence.join` and
`presence.leave` are announced exactly once however many nodes a person's tabs are on. When a node
dies its fields stop being renewed; whichever node's reaper first finds a person with no live field
announces the leave.

Keys: `fc:pres:u:{channel}\\x1f{user}` (hash: `node:<id>` -> `<expiry ms>|<transports>`, `name`,
`since`), `fc:pres:c:{channel}` (sorted set: user -> latest expiry), `fc:pres:index` (sorted set:
`{channel}\\x1f{user}` -> latest expiry, for the reaper), `fc:typing:{channel}` (hash: user ->
`<until ms>|<name>`), `fc:typing:t:{channel}\\x1f{user}` (the throttle, a key with a TTL).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..bus.failfast import FailFast
from ..errors import Unavailable
from .presence_scripts import JOIN, LEAVE, REAP
from .presence_shared import LocalMember, MemberEntry

RETRY_AFTER = 2.0
"""Seconds a client is told to wait while Redis is away."""


class RedisGuard:
    """Redis away or hung becomes `Unavailable` (503 + Retry-After, or the WebSocket error op with
    `retry_after`), never an unhandled error; and while it is known to be away, callers fail at
    once (one at a time probes) instead of each waiting out the timeout."""

    def __init__(self) -> None:
        # RuntimeError: see ERRORS in app/bus/redis/connections.py (a reset handshake under uvloop).
        self.fail_fast = FailFast((RedisConnectionError, RedisTimeoutError, OSError, RuntimeError))

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        def refuse() -> Unavailable:
            return Unavailable(f"{what} unavailable: redis is away", retry_after=RETRY_AFTER)

        try:
            with self.fail_fast.attempt(refuse):
                yield
        except RedisError as exc:
            raise Unavailable(f"{what} unavailable: {exc}", retry_after=RETRY_AFTER) from None
        except (OSError, RuntimeError) as exc:
            raise Unavailable(f"{what} unavailable: {exc}", retry_after=RETRY_AFTER) from None


SEP = "\x1f"
INDEX = "fc:pres:index"


def _now_ms() -> int:
    return int(time.time() * 1000)


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
                    _now_ms(),
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
                args=[self.node, _now_ms(), user, f"{channel}{SEP}{user}"],
            )
            return bool(last)

    async def refresh(self, entries: list[MemberEntry]) -> None:
        with self._guard("presence"):
            if not entries:
                return
            now = time.monotonic()
            expiry = _now_ms() + self._lease_ms
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
            now = _now_ms()
            users = await self._redis.zrangebyscore(f"fc:pres:c:{channel}", now, "+inf")
            if not users:
                return []
            async with self._redis.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.hgetall(f"fc:pres:u:{channel}{SEP}{_text(user)}")
                hashes = await pipe.execute()
            result = []
            for user, fields in zip(users, hashes, strict=True):
                transports: set[str] = set()
                name, since = "", 0.0
                for key, value in fields.items():
                    key, value = _text(key), _text(value)
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
                            "user": _text(user),
                            "name": name,
                            "transports": sorted(transports),
                            "since": since,
                        }
                    )
            return sorted(result, key=lambda m: m["since"])

    async def reap(self) -> list[tuple[str, str, str]]:
        with self._guard("presence"):
            now = _now_ms()
            due = await self._redis.zrangebyscore(INDEX, "-inf", now, start=0, num=100)
            gone = []
            for raw in due:
                entry = _text(raw)
                channel, _, user = entry.partition(SEP)
                name = await self._reap(keys=self._keys(channel, user), args=[now, user, entry])
                if name is not None:
                    gone.append((channel, user, _text(name)))
            return gone


class RedisTypingState:
    def __init__(
        self, redis: Redis, throttle: float, expiry: float, guard: RedisGuard | None = None
    ) -> None:
        self._redis = redis
        self._guard = guard or RedisGuard()
        self._throttle_ms = max(1, int(throttle * 1000))
        self._expiry_ms = int(expiry * 1000)

    async def signal(self, channel: str, user: str, name: str) -> bool:
        with self._guard("typing"):
            until = _now_ms() + self._expiry_ms
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(f"fc:typing:t:{channel}{SEP}{user}", 1, nx=True, px=self._throttle_ms)
                pipe.hset(f"fc:typing:{channel}", user, f"{until}|{name}")
                pipe.pexpire(f"fc:typing:{channel}", self._expiry_ms + self._throttle_ms)
                forwarded, _, _ = await pipe.execute()
            return bool(forwarded)

    async def typing(self, channel: str) -> list[dict[str, str]]:
        with self._guard("typing"):
            now = _now_ms()
            typists = await self._redis.hgetall(f"fc:typing:{channel}")
            result = []
            for user, value in typists.items():
                until, _, name = _text(value).partition("|")
                if float(until) > now:
                    result.append({"user": _text(user), "name": name})
            return result


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
