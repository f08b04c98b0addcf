"""Remembered results of publishes made with an `Idempotency-Key`, so a retry gets the first event.

A publish first claims its key; the claim answers with the stored event of an earlier publish,
with PENDING while another publish (perhaps on another node) holds the key, or with None: the key
is now held by this publish, which then stores its event (`put`) or gives the key back (`release`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from .backend import Backend

PENDING: Final = b""
"""The claim of a publish still in progress (a stored event is never empty)."""
UNKNOWN: Final = b"?"
"""Prefix of the event a publish would have kept when its write failed with an unknown outcome."""


class IdempotencyStore(Protocol):
    async def claim(self, key: str) -> bytes | None:
        """None: the key is now ours. Otherwise the stored event JSON, or PENDING."""

    async def put(self, key: str, event_json: bytes) -> None:
        """Remember the event published under `key`."""

    async def release(self, key: str) -> None:
        """Give up a claim whose publish failed."""


class MemoryIdempotencyStore:
    """Bounded by age and by count: the oldest keys are forgotten first."""

    def __init__(self, ttl: float, max_keys: int = 100_000) -> None:
        self._ttl = ttl
        self._max_keys = max_keys
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def claim(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] >= time.monotonic():
            return entry[1]
        self._set(key, PENDING)
        return None

    async def put(self, key: str, event_json: bytes) -> None:
        self._set(key, event_json)

    async def release(self, key: str) -> None:
        if self._entries.get(key, (0, None))[1] == PENDING:
            del self._entries[key]

    def _set(self, key: str, value: bytes) -> None:
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_keys:
            self._entries.popitem(last=False)


async def settle(
    backend: Backend, store: IdempotencyStore, key: str, stored: bytes
) -> bytes | None:
    """The publish under `key` failed with its outcome unknown: read whether its event was kept.
    Returns the event's JSON if it was; else None, and the key is this publish's to try again."""
    from .backend import event_from_json

    tentative = event_from_json(stored[len(UNKNOWN) :])
    after = (tentative.seq or 1) - 1
    found = (await backend.read(tentative.channel, after, 1)).events
    if found and found[0].json == tentative.json:
        await store.put(key, found[0].json)
        return found[0].json
    await store.put(key, PENDING)
    return None
