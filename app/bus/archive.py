"""Copies durable events to the journal after they are acknowledged elsewhere (the Redis streams).

Bounded and best effort: the copy never delays an acknowledgement; a full queue drops the oldest
events with a logged count (Redis still has them), and each batch is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from .backend import Journal
from .events import Event

log = logging.getLogger(__name__)

BATCH = 500
ATTEMPTS = 8
FLUSH_TIMEOUT = 5.0


class Archiver:
    def __init__(self, journal: Journal, max_queued: int = 100_000) -> None:
        # `archive` skips events already kept (a retried batch may have landed); plain journals
        # without it get `append`.
        self._write: Callable[[Sequence[Event]], Awaitable[None]] = (
            getattr(journal, "archive", None) or journal.append
        )
        self.max_queued = max_queued
        self.queue: deque[Event] = deque()
        self.dropped = 0
        self._ready = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._loop(), name="archiver")
        return self._task

    async def stop(self) -> None:
        """Flush for up to FLUSH_TIMEOUT seconds, then give up: the archive is a copy."""
        self._stopping = True
        self._ready.set()
        if self._task is None:
            return
        _, pending = await asyncio.wait({self._task}, timeout=FLUSH_TIMEOUT)
        if pending:
            log.warning("stopping with %d events not archived", len(self.queue))
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def add(self, events: Sequence[Event]) -> None:
        self.queue.extend(events)
        excess = len(self.queue) - self.max_queued
        if excess > 0:
            for _ in range(excess):
                self.queue.popleft()
            # Logged on the first drop and every 10,000 after, not once per publish.
            if self.dropped % 10_000 + excess >= 10_000 or not self.dropped:
                log.error(
                    "archive queue full: %d events so far will not reach the database",
                    self.dropped + excess,
                )
            self.dropped += excess
        self._ready.set()

    async def _loop(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self.queue:
                batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
                await self._write_batch(batch)
            if self._stopping:
                return

    async def _write_batch(self, batch: list[Event]) -> None:
        delay = 0.1
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await self._write(batch)
                return
            except asyncio.CancelledError:
                self.queue.extendleft(reversed(batch))
                raise
            except Exception as exc:
                if attempt == ATTEMPTS:
                    self.dropped += len(batch)
                    log.error("archiving %d events failed for good: %s", len(batch), exc)
                    return
                log.warning("archiving %d events failed (%s); retrying", len(batch), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 4, 30.0)
