"""Capped exponential backoff with full jitter: a random delay in [0, min(cap, base * 2**n)).

Full jitter spreads the reconnects of many clients that lost the same server, so a restarted
server is not met by all of them at once. The random source is injected for tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

MAX_EXPONENT = 30


class Backoff:
    def __init__(
        self, base: float = 0.5, cap: float = 30.0, rng: Callable[[], float] = random.random
    ) -> None:
        # Written so that NaN fails too: its delays would be NaN, and asyncio.sleep(nan) never
        # returns (a subscription that never reconnects); an infinite cap is the same in time.
        if not 0 < base <= cap < math.inf:
            raise ValueError(f"backoff needs 0 < base <= cap, finite: got {base}, {cap}")
        self.base = base
        self.cap = cap
        self.rng = rng
        self.attempt = 0

    def ceiling(self) -> float:
        """The largest delay the next call may return (before any `minimum`)."""
        return min(self.cap, self.base * 2.0**self.attempt)

    def next(self, minimum: float = 0.0) -> float:
        """The delay before the next attempt, in seconds; at least `minimum` (a Retry-After)."""
        ceiling = self.ceiling()
        self.attempt = min(self.attempt + 1, MAX_EXPONENT)
        return max(minimum, self.rng() * ceiling)

    def reset(self) -> None:
        self.attempt = 0
