"""Revocations shared by every node through Redis: each is a key with a TTL (for nodes that
start later) and a pub/sub message (for the nodes running), so every node applies a sign-out
within moments."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from .revocation import MAX_PEOPLE, Revocations, unavailable

log = logging.getLogger(__name__)

CHANNEL = "fc:revocations"
KEY_PREFIX = "fc:revoked:"
RECONNECT_MIN, RECONNECT_MAX = 0.1, 5.0


class RedisRevocations(Revocations):
    """Revocations shared by every node through Redis (keys with a TTL, and pub/sub)."""

    def __init__(
        self,
        ttl: float,
        redis: Any,
        url: str,
        max_people: int = MAX_PEOPLE,
        *,
        connect_timeout: float = 1.5,
    ) -> None:
        super().__init__(ttl, max_people=max_people)
        self._redis = redis
        self._url = url
        self._connect_timeout = connect_timeout  # redis_command_timeout, for the listener
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def revoke_once(self, user: str) -> tuple[float, bool]:
        self.make_room(user)  # this node's copy holds every node's revocations
        at = time.time()
        key = KEY_PREFIX + user
        try:
            # The key's old value says, for the whole cluster at once, whether this is the first.
            before = await self._redis.set(key, repr(at), ex=max(1, int(self._ttl)), get=True)
            await self._redis.publish(CHANNEL, f"{at!r} {user}")
        except Exception as exc:
            raise unavailable(exc) from None
        self.apply(user, at)
        return at, before is None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), 5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _load(self) -> None:
        """Revocations made before this node (re)subscribed."""
        async for key in self._redis.scan_iter(match=KEY_PREFIX + "*", count=500):
            value = await self._redis.get(key)
            if value is not None:
                name = key.decode() if isinstance(key, bytes) else str(key)
                self.apply(name[len(KEY_PREFIX) :], float(value))

    async def _listen(self) -> None:
        from redis.asyncio import Redis

        from ..bus.redis.pubsub import follow

        async def ready() -> None:
            await self._load()  # revocations published while this node was not subscribed
            self._listening.set()

        subscriber = Redis.from_url(
            self._url, socket_timeout=10, socket_connect_timeout=self._connect_timeout
        )
        try:
            await follow(
                subscriber,
                CHANNEL,
                self._on_message,
                what="revocation listener",
                backoff=(RECONNECT_MIN, RECONNECT_MAX),
                ready=ready,
            )
        finally:
            with contextlib.suppress(Exception):
                await subscriber.aclose()

    def _on_message(self, payload: bytes) -> None:
        at, _, user = payload.decode(errors="replace").partition(" ")
        try:
            self.apply(user, float(at))
        except ValueError:
            log.warning("skipping malformed revocation message")
