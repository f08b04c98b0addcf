"""Room for guest sign-ups, so that no client can take sign-out away from anyone else.

A sign-out is held for the life of a token and at most `max_revocations` are held
(revocation.py): past that a new person's sign-out is refused. Guests cost nothing to make, and a
client with a few addresses could sign guests up and out until the bound is full. So a guest is
counted from its sign-up for the life of its token (it may sign out until then), and a sign-up is
refused (503 `guest_signups_full`) while the sign-outs held plus the guests counted reach
`FOURCAST_GUEST_REVOCATION_SHARE` of the bound: the failure falls on sign-up (availability), not
on sign-out (security), and the rest of the bound stays for other people's sign-outs.
A guest's first sign-out takes it out of the count (`signed_out`): from then on it is counted as
the sign-out held, once, not twice. A guest signed out by a service instead is counted twice until
its token expires (the service names a person, not its sign-up): the safe side.
A sign-up or sign-out is rare next to a poll: this is its only cost (a count, or one Redis round
trip).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import Unavailable
from .revocation import Revocations

log = logging.getLogger(__name__)

BUCKETS = 64
"""Sign-ups are counted per 1/64 of a token's life (a guest is counted up to that much longer)."""
KEY_PREFIX = "fc:guests:"
MadeSince = Callable[[float, float, float], Awaitable[dict[int, int]]]
"""(since, width, held_since) -> people signed up since `since`, per bucket `created_at // width`,
but for those revoked since `held_since` (held: counted as their sign-out)."""


class GuestRoom:
    """Guests counted in this process (one node)."""

    def __init__(
        self,
        revocations: Revocations,
        window: float,
        limit: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._revocations = revocations
        self._window = window
        """The life of a token, and of a revocation (session_ttl plus a minute)."""
        self._width = window / BUCKETS
        self.limit = limit
        self._clock = clock
        self._counts: dict[int, int] = {}
        """Guests signed up per bucket (`now // width`) of the last `window` seconds."""
        self.refused = 0
        """Sign-ups refused for want of room (a metric)."""

    async def start(self, made_since: MadeSince) -> None:
        """Guests signed up before this process started may still sign out: counted from the
        database's people (`Accounts.made_since`), but for those signed out (held already)."""
        now = self._clock()
        since = now - self._window - self._width
        for bucket, count in (await made_since(since, self._width, now - self._window)).items():
            self._counts[bucket] = self._counts.get(bucket, 0) + count

    async def admit(self) -> float:
        """Counts one guest about to be signed up, and returns when (its sign-up: its token's
        `iat`); raises Unavailable (503) when there is no room for its sign-out beside those held
        and those other guests may still make."""
        now = self._clock()
        bucket = int(now // self._width)
        counted, oldest = await self._take(bucket)
        revocations = self._revocations
        revocations.forget_expired(now)
        held = len(revocations)
        if held + counted <= self.limit:
            return now
        await self._give_back(bucket)
        self.refused += 1
        # Room comes back as the oldest guests' tokens expire or the oldest sign-out goes.
        waits = [(oldest + BUCKETS + 1) * self._width - now] if oldest is not None else []
        first = next(iter(revocations.not_before.values()), None)
        if first is not None:
            waits.append(first + self._window - now)
        raise Unavailable(
            "too many guests signed up or out lately: try again later",
            code="guest_signups_full",
            retry_after=max(1, math.ceil(min(waits, default=1))),
        )

    async def signed_out(self, signed_up: float) -> None:
        """A guest signed up at `signed_up` was signed out for the first time: its sign-out is
        held now, so it leaves the count of guests who may still make one."""
        bucket = int(signed_up // self._width)
        if bucket >= int(self._clock() // self._width) - BUCKETS:  # still counted
            await self._give_back(bucket)

    async def _take(self, bucket: int) -> tuple[int, int | None]:
        """Counts a guest in `bucket`: (guests counted, with it; the oldest bucket counted)."""
        counts = self._counts
        for old in [b for b in counts if b < bucket - BUCKETS]:
            del counts[old]
        counts[bucket] = counts.get(bucket, 0) + 1
        return sum(counts.values()), min((b for b, n in counts.items() if n > 0), default=None)

    async def _give_back(self, bucket: int) -> None:
        if self._counts.get(bucket, 0) > 0:
            self._counts[bucket] -= 1


class RedisGuestRoom(GuestRoom):
    """Guests counted for the whole cluster (whose nodes hold the same revocations): a counter
    per bucket, `fc:guests:<bucket>`, kept a token's life and a little longer."""

    def __init__(self, revocations: Revocations, window: float, limit: int, redis: Any) -> None:
        super().__init__(revocations, window, limit)
        self._redis = redis

    async def start(self, made_since: MadeSince) -> None:
        pass  # the counters are in Redis, as the revocations are

    async def _take(self, bucket: int) -> tuple[int, int | None]:
        # Counted before it is compared: two nodes admitting at once each see the other's guest.
        keys = [f"{KEY_PREFIX}{b}" for b in range(bucket - BUCKETS, bucket + 1)]
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(keys[-1])
        pipe.expire(keys[-1], math.ceil(self._width * (BUCKETS + 2)))
        pipe.mget(keys)
        try:
            *_, values = await pipe.execute()
        except Exception as exc:
            log.warning("counting a guest sign-up failed: %s", exc)
            raise Unavailable("guest sign-up unavailable", retry_after=2) from None
        counts = [int(value or 0) for value in values]
        oldest = next((bucket - BUCKETS + i for i, n in enumerate(counts) if n > 0), None)
        return sum(counts), oldest

    async def _give_back(self, bucket: int) -> None:
        key = f"{KEY_PREFIX}{bucket}"
        pipe = self._redis.pipeline(transaction=False)
        pipe.decr(key)
        pipe.expire(key, math.ceil(self._width * (BUCKETS + 2)))  # were it gone (Redis lost it)
        with contextlib.suppress(Exception):  # else counted a little longer: room only shrinks
            await pipe.execute()
