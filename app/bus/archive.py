"""Copies durable events to the SQL journal after they are acknowledged elsewhere (Redis streams).

The copy is never on the acknowledgement path, and it never drops an event: a batch that fails is
retried (with capped backoff) until it lands. What bounds the queue is the publishers: while more
than `max_queued` events wait, `full` is true and the backend refuses new publishes (503 +
Retry-After) until the archive catches up. `lag` is the queue's length (a metric). At stop, the
queue is flushed for up to `flush_timeout` seconds; whatever remains is logged (it is still in Redis).
The archive waits up to `linger` seconds after the oldest queued event for more to join the batch,
so a trickle of publishes costs one SQL transaction per linger rather than one per event; a full
batch, a full queue (publishers held back) or a stop ends the wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from .backend import BusUnavailable, Journal
from .events import Event

log = logging.getLogger(__name__)


class ArchiveBehind(BusUnavailable):
    """The SQL archive is too far behind: publishes wait (503 + Retry-After) until it catches up."""


BATCH = 500
RETRY_MIN, RETRY_MAX = 0.1, 5.0


class Archiver:
    def __init__(
        self,
        journal: Journal,
        max_queued: int = 100_000,
        flush_timeout: float = 30.0,
        linger: float = 0.0,
    ) -> None:
        # `archive` skips events already kept (a retried batch may have landed); plain journals
        # without it get `append`.
        self._write: Callable[[Sequence[Event]], Awaitable[None]] = (
            getattr(journal, "archive", None) or journal.append
        )
        self.max_queued = max_queued
        self.flush_timeout = flush_timeout
        self.linger = linger
        self.queue: deque[Event] = deque()
        self.in_flight = 0
        self.failures = 0
        """Batches that failed and were retried (a metric)."""
        self._ready = asyncio.Event()
        self._stopping = False
        self._linger_over = asyncio.Event()
        """Set by `stop`, a full batch and a full queue: a lingering archive writes at once."""
        self._oldest_at = 0.0
        """When the oldest queued event arrived (monotonic seconds)."""
        self._task: asyncio.Task[None] | None = None

    @property
    def lag(self) -> int:
        """Events acknowledged but not yet in the journal."""
        return len(self.queue) + self.in_flight

    @property
    def full(self) -> bool:
        """True while publishers must wait: the archive is `max_queued` events behind."""
        return self.lag >= self.max_queued

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._loop(), name="archiver")
        return self._task

    async def stop(self) -> None:
        """Flush for up to `flush_timeout` seconds."""
        self._stopping = True
        self._linger_over.set()
        self._ready.set()
        if self._task is None:
            return
        _, pending = await asyncio.wait({self._task}, timeout=self.flush_timeout)
        if pending:
            log.error(
                "stopping with %d events not archived after %.0fs (they are still in Redis)",
                self.lag,
                self.flush_timeout,
            )
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def check_room(self) -> None:
        if self.full:
            raise ArchiveBehind(f"the SQL archive is {self.lag} events behind; retry shortly")

    async def write_now(self, events: Sequence[Event]) -> None:
        """Write to the journal before acknowledging (the `ack_after_journal` setting); on failure
        the events are queued for the archive loop and the caller refuses the publish."""
        try:
            await self._write(events)
        except Exception as exc:
            self.add(events)
            raise BusUnavailable(f"journal write failed: {exc}") from exc

    def add(self, events: Sequence[Event]) -> None:
        if not self.queue:
            self._oldest_at = time.monotonic()
        self.queue.extend(events)
        self._ready.set()
        if self._batch_due():
            self._linger_over.set()

    def _batch_due(self) -> bool:
        """A full batch, or publishers held back: the linger would only delay them."""
        return len(self.queue) >= BATCH or self.full

    async def _loop(self) -> None:
        while True:
            await self._ready.wait()
            # Up to `linger` after the oldest queued event arrived, not after this wake-up:
            # events queued during a slow write wait for no more than the write.
            wait = self._oldest_at + self.linger - time.monotonic()
            if wait > 0 and self.queue and not self._batch_due() and not self._stopping:
                self._linger_over.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._linger_over.wait(), wait)
            self._ready.clear()
            while self.queue:
                batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
                self.in_flight = len(batch)
                try:
                    await self._write_batch(batch)
                finally:
                    self.in_flight = 0
            if self._stopping:
                return

    async def _write_batch(self, batch: list[Event]) -> None:
        delay = RETRY_MIN
        while True:
            try:
                await self._write(batch)
                return
            except asyncio.CancelledError:
                self.queue.extendleft(reversed(batch))
                raise
            except Exception as exc:
                self.failures += 1
                log.warning("archiving %d events failed (%s); retrying", len(batch), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
