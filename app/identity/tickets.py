"""Claiming a ticket's id once, wherever it is redeemed: in Redis when clustered (SET NX with an
expiry), else in the database (app/store/tickets.py), so a restart does not make it usable again."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

from ..errors import Unavailable


class TicketClaims(Protocol):
    async def claim(self, jti: str, expires_at: float) -> bool:
        """True the first time `jti` is claimed; False ever after (until it has expired)."""

    async def release(self, jti: str) -> None:
        """Give back a claim of `jti` (its request was refused after claiming it): claimable
        once more. Raises Unavailable when the store is."""


class MemoryTicketClaims:
    """In this process only: for tests and embedding without a database."""

    def __init__(self) -> None:
        self._used: OrderedDict[str, float] = OrderedDict()

    async def claim(self, jti: str, expires_at: float) -> bool:
        now = time.time()
        while self._used and next(iter(self._used.values())) < now:
            self._used.popitem(last=False)
        if jti in self._used:
            return False
        self._used[jti] = expires_at
        return True

    async def release(self, jti: str) -> None:
        self._used.pop(jti, None)


class RedisTicketClaims:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def claim(self, jti: str, expires_at: float) -> bool:
        ttl_ms = max(1000, int((expires_at - time.time()) * 1000) + 1000)
        try:
            return bool(await self._redis.set(f"fc:ticket:{jti}", b"1", nx=True, px=ttl_ms))
        except Exception as exc:
            raise Unavailable(f"ticket store unavailable: {exc}", retry_after=2) from None

    async def release(self, jti: str) -> None:
        try:
            await self._redis.delete(f"fc:ticket:{jti}")
        except Exception as exc:
            raise Unavailable(f"ticket store unavailable: {exc}", retry_after=2) from None
