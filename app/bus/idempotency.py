"""Remembered results of publishes made with an `Idempotency-Key`, so a retry gets the first event.

A publish first claims its key; the claim answers with the stored event of an earlier publish,
with PENDING while another publish (perhaps on another node) holds the key, or with None: the key
is now held by this publish, which then stores its event (`put`) or gives the key back (`release`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Final, Protocol

from .events import now_ms

if TYPE_CHECKING:
    from .backend import Backend, Journal

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

    async def recall(self, key: str) -> bytes | None:
        """The event kept under `key` where events are kept for good (the journal), if this
        store can look there; None when it was not kept, or the store cannot tell."""


ENTRY_OVERHEAD = 150
"""Bytes an entry costs beyond its key and event: the tuple, the float and the dict slot."""


class MemoryIdempotencyStore:
    """Bounded by age, by count and by bytes: the oldest keys are forgotten first."""

    def __init__(self, ttl: float, max_keys: int = 100_000, max_bytes: int = 32 << 20) -> None:
        self._ttl = ttl
        self._max_keys = max_keys
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.bytes = 0
        """What the entries hold, counted as key + event + ENTRY_OVERHEAD (a metric)."""

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
            self._forget(key)

    async def recall(self, key: str) -> bytes | None:
        return None  # memory only: what it forgot, it cannot tell

    def _set(self, key: str, value: bytes) -> None:
        self._forget(key)
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self.bytes += len(key) + len(value) + ENTRY_OVERHEAD
        while len(self._entries) > self._max_keys or self.bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            if oldest == key:
                break  # never forget the entry just set
            self._forget(oldest)

    def _forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(key) + len(entry[1]) + ENTRY_OVERHEAD


class JournalIdempotencyStore(MemoryIdempotencyStore):
    """The in-process store, backed by the journal, where each event is kept with its key in its
    own transaction: a key the memory has not got (the server restarted or was killed after
    keeping the event, or the entry was evicted) is looked up among the events kept within the
    TTL. Only a keyed publish that misses the memory pays that one indexed read."""

    def __init__(
        self, journal: Journal, ttl: float, max_keys: int = 100_000, max_bytes: int = 32 << 20
    ) -> None:
        super().__init__(ttl, max_keys, max_bytes)
        self._journal = journal

    async def claim(self, key: str) -> bytes | None:
        stored = await super().claim(key)
        if stored is not None:
            return stored
        try:
            kept = await self._journal.find_by_key(key, since=now_ms() - self._ttl * 1000)
        except BaseException:
            await self.release(key)  # not knowing, this publish must not hold the key
            raise
        if kept is None:
            return None
        await self.put(key, kept.json)
        return kept.json

    async def recall(self, key: str) -> bytes | None:
        kept = await self._journal.find_by_key(key, since=now_ms() - self._ttl * 1000)
        return None if kept is None else kept.json


async def settle(
    backend: Backend, store: IdempotencyStore, key: str, stored: bytes
) -> bytes | None:
    """The publish under `key` failed with its outcome unknown: read whether its event was kept.
    Returns the event's JSON if it was; else None, and the key is this publish's to try again."""
    from .backend import event_from_json

    tentative = event_from_json(stored[len(UNKNOWN) :])
    after = (tentative.seq or 1) - 1
    read = await backend.read(tentative.channel, after, 1)
    found = read.events
    if found and found[0].json == tentative.json:
        await store.put(key, found[0].json)
        return found[0].json
    if read.reset:
        # The tentative cursor is older than the history the backend retains (the channel
        # moved on meanwhile): what was kept is told by the journal, not by this page.
        recalled = await store.recall(key)
        if recalled is not None:
            await store.put(key, recalled)
            return recalled
    await store.put(key, PENDING)
    return None
