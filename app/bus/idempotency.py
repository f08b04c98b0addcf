"""Remembered results of publishes made with an `Idempotency-Key`, so a retry gets the first event."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol


class IdempotencyStore(Protocol):
    async def get(self, key: str) -> bytes | None:
        """The stored event JSON for `key`, if still remembered."""

    async def put(self, key: str, event_json: bytes) -> None:
        """Remember the event published under `key`."""


class MemoryIdempotencyStore:
    """Bounded by age and by count: the oldest keys are forgotten first."""

    def __init__(self, ttl: float, max_keys: int = 100_000) -> None:
        self._ttl = ttl
        self._max_keys = max_keys
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[key]
            return None
        return entry[1]

    async def put(self, key: str, event_json: bytes) -> None:
        self._entries[key] = (time.monotonic() + self._ttl, event_json)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_keys:
            self._entries.popitem(last=False)
