"""The node's list of appends whose reply was lost (app/bus/redis/recovery.py): one given up at
its bound while it is being looked for leaves the others to be looked for, not one of them."""

from __future__ import annotations

import asyncio
from typing import Any

from app.bus.backend import BusUnavailable, Draft
from app.bus.failfast import FailFast
from app.bus.redis.recovery import LostAppend, Recovery
from tests.bus.helpers import wait_until


class Redis:
    """What the search asks of Redis: each fence set is recorded, and no stream holds anything."""

    def __init__(self) -> None:
        self.fenced: list[str] = []
        self.open = asyncio.Event()

    async def set(self, key: str, value: bytes, px: int) -> None:
        self.fenced.append(key)
        await self.open.wait()

    async def xrevrange(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


async def command(call: Any, *, idempotent: bool = False) -> Any:
    return await call()


def batch(fence: str) -> LostAppend:
    return LostAppend(fence, "1.5", [Draft("room:r", "t", b"12345678", "svc")])


async def test_a_batch_given_up_while_looked_for_leaves_the_next_one_to_be_looked_for() -> None:
    redis = Redis()
    failures = FailFast((BusUnavailable,))
    recovery = Recovery(redis, command, str, None, 1000, failures, max_bytes=10)  # type: ignore[arg-type]
    recovery.add(batch("fence:1"))
    await wait_until(lambda: redis.fenced == ["fence:1"])  # being looked for
    recovery.add(batch("fence:2"))  # over 10 bytes: the oldest, fence:1, is given up
    assert [lost.fence for lost in recovery.lost] == ["fence:2"] and recovery.given_up == 1
    redis.open.set()
    await wait_until(lambda: not recovery.lost)
    assert redis.fenced == ["fence:1", "fence:2"]  # fence:2 was looked for, not dropped
    assert recovery.lost_bytes == 0
    await recovery.stop()
