"""Fail fast while a dependency is known to be away, instead of making every caller wait out a
timeout: after a connection failure or a timeout, calls fail at once for a short cooldown, then
try again. So a Redis outage costs one timeout per cooldown, not one per request."""

from __future__ import annotations

import time
from collections.abc import Callable

COOLDOWN = 0.5
"""Seconds calls fail at once after a failure: short, so recovery is noticed quickly."""


class Cooldown:
    def __init__(self, seconds: float = COOLDOWN, clock: Callable[[], float] = time.monotonic):
        self._seconds = seconds
        self._clock = clock
        self._until = 0.0
        self.failures = 0
        """Connection failures and timeouts seen (a metric and a test hook)."""

    @property
    def away(self) -> bool:
        """True while calls should fail at once."""
        return self._clock() < self._until

    def failed(self) -> None:
        self.failures += 1
        self._until = self._clock() + self._seconds
