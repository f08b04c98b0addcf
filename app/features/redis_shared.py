"""What the Redis-backed features (presence_redis.py, typing_redis.py) share: the guard that
turns Redis away into `Unavailable`, the key separator and time in milliseconds."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..bus.failfast import FailFast
from ..errors import Unavailable

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
"""Between a channel and a user in a key or a field."""


def now_ms() -> int:
    return int(time.time() * 1000)


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
