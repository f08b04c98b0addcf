"""Token-bucket rate limits and connection caps, kept in this process."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import RateLimited, Unavailable


class TokenBuckets:
    """One bucket per key; `take` raises RateLimited with the wait until a token is back."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> None:
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            raise RateLimited(
                "too many publishes, slow down", retry_after=(cost - tokens) / self._rate
            )
        self._buckets[key] = (tokens - cost, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)


class ConnectionLimits:
    """Caps on open streaming connections per person, per client IP and per process."""

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
        if self.draining:
            raise Unavailable("server is restarting", retry_after=2)
        if self.open >= self._total:
            raise Unavailable("server is full", retry_after=10)
        if self._by_ip.get(ip, 0) >= self._per_ip:
            raise RateLimited("too many connections from this address", retry_after=10)
        if user is not None and self._by_user.get(user, 0) >= self._per_user:
            raise RateLimited("too many connections for this user", retry_after=10)
        self.open += 1
        self._by_ip[ip] = self._by_ip.get(ip, 0) + 1
        if user is not None:
            self._by_user[user] = self._by_user.get(user, 0) + 1

    def release(self, user: str | None, ip: str) -> None:
        self.open -= 1
        _decrement(self._by_ip, ip)
        if user is not None:
            _decrement(self._by_user, user)


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
