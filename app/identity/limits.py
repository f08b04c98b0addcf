"""Token-bucket rate limits and connection caps, kept in this process."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from ipaddress import IPv6Address, ip_address
from typing import Any, Protocol

from ..errors import RateLimited, Unavailable

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    refused: int
    """Takes refused so far, in this process (`fourcast_budget_refusals_total`)."""

    async def take(self, key: str, cost: float = 1.0) -> None:
        """Spend `cost` tokens of `key`'s bucket, or raise RateLimited with the wait."""


Clock = Callable[[], float]
"""Monotonic seconds; injected so tests drive time instead of racing it."""


def address_key(ip: str) -> str:
    """The key one client address counts under: an IPv6 address by its /64 (one subscriber
    usually holds a whole /64, so each address apart would be no limit at all), IPv4 as is."""
    if ":" not in ip:
        return ip  # IPv4, or not an address at all: counted as given (no parsing per poll)
    return _ipv6_key(ip)


@lru_cache(maxsize=4096)
def _ipv6_key(ip: str) -> str:
    try:
        address = ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(IPv6Address(int(address) >> 64 << 64)) + "/64"
    return ip


class TokenBuckets:
    """One bucket per key, in this process; `take` raises RateLimited with the wait.

    The least recently used keys are forgotten past `max_keys` (a forgotten key starts full
    again), so the buckets themselves are bounded however many keys callers make up.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        max_keys: int = 100_000,
        *,
        what: str = "publishes",
        clock: Clock = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_keys = max_keys
        self._message = f"too many {what}, slow down"
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.refused = 0
        """Takes refused so far (a metric)."""

    @property
    def keys(self) -> int:
        """Keys with a bucket now (at most `max_keys`; a metric)."""
        return len(self._buckets)

    async def take(self, key: str, cost: float = 1.0) -> None:
        self.take_now(key, cost)

    def take_now(self, key: str, cost: float = 1.0) -> None:
        """`take` for callers that cannot await (the buckets never need to)."""
        now = self._clock()
        cost = min(cost, self._burst)  # a cost over the burst could never be paid
        tokens, stamp = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            self.refused += 1
            raise RateLimited(self._message, retry_after=(cost - tokens) / self._rate)
        self._buckets[key] = (tokens - cost, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def give_back(self, key: str, cost: float = 1.0) -> None:
        """Return what `take_now` took, for an action refused after it by another check (a
        connection cap): it was never done. A key forgotten since starts full anyway."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            tokens, stamp = bucket
            self._buckets[key] = (min(self._burst, tokens + min(cost, self._burst)), stamp)


class ConnectionLimits:
    """Caps on open streaming connections per person, per client IP and per process.

    A count that falls to none is kept, at zero: a long poller's count goes 1 -> 0 -> 1 with
    every poll, and forgetting it would delete and re-insert its key each time. The zeros are
    dropped all at once when a key is first counted while its dict holds `SPARE` keys more than
    twice the open connections, so each dict holds at most that many however many people and
    addresses come and go, and each key costs one drop however often it goes to zero.
    """

    SPARE = 1024

    def __init__(self, per_user: int, per_ip: int, total: int) -> None:
        self._per_user = per_user
        self._per_ip = per_ip
        self._total = total
        self._by_user: dict[str, int] = {}
        self._by_ip: dict[str, int] = {}
        self.open = 0
        self.draining = False

    @contextmanager
    def hold(self, user: str | None, ip: str) -> Iterator[None]:
        self.acquire(user, ip)
        try:
            yield
        finally:
            self.release(user, ip)

    def acquire(self, user: str | None, ip: str) -> None:
        ip = address_key(ip)
        if self.draining:
            raise Unavailable("server is restarting", retry_after=2)
        if self.open >= self._total:
            raise Unavailable("server is full", retry_after=10)
        # Each count read once (this runs for every long poll that waits).
        by_ip = self._by_ip
        from_ip = by_ip.get(ip)
        if from_ip is None:
            from_ip = self._first(by_ip)
        elif from_ip >= self._per_ip:
            raise RateLimited("too many connections from this address", retry_after=10)
        if user is not None:
            by_user = self._by_user
            theirs = by_user.get(user)
            if theirs is None:
                theirs = self._first(by_user)
            elif theirs >= self._per_user:
                raise RateLimited("too many connections for this user", retry_after=10)
            by_user[user] = theirs + 1
        self.open += 1
        by_ip[ip] = from_ip + 1

    def add_user(self, user: str) -> None:
        """Count an open connection against `user` (it authenticated after the handshake)."""
        theirs = self._by_user.get(user)
        if theirs is None:
            theirs = self._first(self._by_user)
        elif theirs >= self._per_user:
            raise RateLimited("too many connections for this user", retry_after=10)
        self._by_user[user] = theirs + 1

    def release(self, user: str | None, ip: str) -> None:
        # One fewer each, kept at none (never below: a release too many counts nothing).
        # Written out, not a helper's two calls: this runs for every long poll that waited.
        self.open -= 1
        by_ip = self._by_ip
        ip = address_key(ip)
        left = by_ip.get(ip, 0) - 1
        if left >= 0:
            by_ip[ip] = left
        if user is not None:
            by_user = self._by_user
            left = by_user.get(user, 0) - 1
            if left >= 0:
                by_user[user] = left

    def _first(self, counts: dict[str, int]) -> int:
        """A key about to be counted for the first time (or again, its zero dropped): drops
        the zeros if `counts` is past its bound. Its count so far: none."""
        if len(counts) >= self.SPARE + 2 * self.open:
            for key in [key for key, count in counts.items() if not count]:
                del counts[key]
        return 0


def decrement(counts: dict[str, int], key: str) -> None:
    """One fewer for `key`, forgotten at none (so the counts hold only keys in use)."""
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


TOKEN_BUCKET = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - stamp) * rate)
local wait = 0
if tokens < cost then
  wait = (cost - tokens) / rate
else
  tokens = tokens - cost
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisTokenBuckets:
    """The same buckets shared by every node: one person's publishes count once, wherever sent."""

    def __init__(self, redis: Any, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = burst
        self._script = redis.register_script(TOKEN_BUCKET)
        self.refused = 0
        """Takes refused on this node (the bucket is the cluster's, the metric each node's)."""

    async def take(self, key: str, cost: float = 1.0) -> None:
        try:
            wait = float(
                await self._script(keys=[f"fc:rl:{key}"], args=[self._rate, self._burst, cost])
            )
        except Exception as exc:
            # The client learns no more than "unavailable"; the operator gets the cause.
            log.warning("rate limiter unavailable: %s", exc)
            raise Unavailable("rate limiter unavailable", retry_after=2) from None
        if wait > 0:
            self.refused += 1
            raise RateLimited("too many publishes, slow down", retry_after=wait)
