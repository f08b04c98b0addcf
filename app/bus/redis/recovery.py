"""Archiving what an append kept when its reply was lost.

A node archives its events on the append's reply. When the reply never comes (a timeout, a dropped
connection) the script may still have run: its events are in the log and delivered, and without
more in no SQL archive (an idempotent retry finds its own event, idempotency.py; a publish without
a key has no retry that could). So the node remembers such a batch, and once Redis answers again
it first fences the batch: it sets the batch's fence key, which the append script checks before
appending anything, so an append still held by the network can no longer land later. What it then
finds of the batch in the retained streams (entries with the batch's stamp, sender, type and data)
is all that landed, and is archived (the archive skips copies). Only an event trimmed before the
node reaches Redis again (more than `history_size` later events on its channel) is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ..archive import Archiver
from ..backend import BusUnavailable, Draft
from ..failfast import FailFast
from .streams import Entry, decode, parse_id

log = logging.getLogger(__name__)

Command = Callable[..., Awaitable[Any]]
"""RedisBackend.command: a call, failing with BusUnavailable."""
FENCE_TTL_MS = 20 * 60_000
"""Longer than TCP goes on retransmitting a request held by the network (about 15 minutes)."""
MAX_LOST = 1_000
"""Batches waiting to be looked for; beyond it the oldest is given up (and logged)."""
MAX_LOST_BYTES = 64 << 20
"""Their data, at most (the default of `max_pending_publish_bytes`, which the node passes):
beyond it too the oldest is given up."""
PAGE = 100
RETRY_MIN, RETRY_MAX = 0.05, 2.0


def never_sent(error: BaseException) -> bool:
    """A failure before the request left: no connection could be had (Redis refusing them, a
    full pool). Redis-py says so only in its messages."""
    text = str(error.__cause__ or error)
    return "connecting to" in text or "No connection available" in text


@dataclass(slots=True)
class LostAppend:
    fence: str
    stamp: str
    drafts: Sequence[Draft]


class Recovery:
    def __init__(
        self,
        redis: Redis,
        command: Command,
        key: Callable[[str], str],
        archiver: Archiver,
        history: int,
        fail_fast: FailFast,
        max_bytes: int = MAX_LOST_BYTES,
    ) -> None:
        self._fail_fast = fail_fast
        self._max_bytes = max_bytes
        self._redis = redis
        self._command = command
        self._key = key
        self._archiver = archiver
        self._history = history
        self.lost: list[LostAppend] = []
        """Batches whose reply was lost, not yet looked for (tests wait on it)."""
        self.lost_bytes = 0
        """The data of those batches (a gauge, as is their count)."""
        self.given_up = 0
        """Batches given up at MAX_LOST or `max_bytes` (a counter)."""
        self._task: asyncio.Task[None] | None = None

    def add(self, batch: LostAppend) -> None:
        self.lost.append(batch)
        self.lost_bytes += _size(batch)
        while self.lost and (len(self.lost) > MAX_LOST or self.lost_bytes > self._max_bytes):
            gone = self.lost[0]
            self._forget(gone)
            self.given_up += 1
            log.error("giving up archiving an append whose reply was lost (%s)", gone.fence)
        if self.lost and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name="redis-lost-appends")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.lost:
            log.error(
                "stopping with %d appends whose reply was lost not looked for", len(self.lost)
            )

    async def _run(self) -> None:
        delay = RETRY_MIN
        while self.lost:
            # While Redis is away, the publishes and polls find out when it is back (one probe
            # at a time, failfast.py): this waits for them, probing itself only at the slowest
            # pace, so as not to take their turns.
            if not self._fail_fast.down or delay >= RETRY_MAX:
                batch = self.lost[0]
                try:
                    await self._recover(batch)
                except BusUnavailable:
                    pass
                else:
                    self._forget(batch)  # by itself: `add` may have given it up meanwhile
                    delay = RETRY_MIN
                    continue
            await asyncio.sleep(delay)  # a backoff, not synchronisation
            delay = min(delay * 2, RETRY_MAX)

    def _forget(self, batch: LostAppend) -> None:
        for i, held in enumerate(self.lost):
            if held is batch:
                del self.lost[i]
                self.lost_bytes -= _size(batch)
                return

    async def _recover(self, batch: LostAppend) -> None:
        redis = self._redis
        fence = batch.fence
        await self._command(lambda: redis.set(fence, b"1", px=FENCE_TTL_MS), idempotent=True)
        stamp = batch.stamp.encode()
        for channel in dict.fromkeys(d.channel for d in batch.drafts):
            wanted: list[tuple[bytes | None, ...]] = [
                (d.type.encode(), d.sender.encode(), d.data)
                for d in batch.drafts
                if d.channel == channel
            ]
            found: list[Entry] = []
            async for entry in self._newest_first(channel):
                fields = entry[1]
                what = (fields.get(b"t"), fields.get(b"f"), fields.get(b"d"))
                if fields.get(b"ts") == stamp and what in wanted:
                    wanted.remove(what)
                    found.append(entry)
                    if not wanted:
                        break
            if found:
                events = decode(channel, reversed(found))
                log.warning("archiving %d events whose append reply was lost", len(events))
                self._archiver.add(events)

    async def _newest_first(self, channel: str) -> AsyncIterator[Entry]:
        """The retained entries of the channel's stream, newest first, up to history_size."""
        key = self._key(channel)
        redis = self._redis
        top = "+"
        seen = 0
        while seen < self._history:
            page: list[Entry] = await self._command(
                lambda top=top: redis.xrevrange(key, top, "-", count=PAGE),
                idempotent=True,
            )
            for entry in page:
                yield entry
            seen += len(page)
            if len(page) < PAGE:
                return
            top = f"(0-{parse_id(page[-1][0])[1]}"


def _size(batch: LostAppend) -> int:
    return sum(len(draft.data) for draft in batch.drafts)
