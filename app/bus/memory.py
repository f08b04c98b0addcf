"""The in-process backend: each channel's ordered log in memory, kept durable by a journal.

Ordering is trivially correct here because the bus's single committer task calls `append` one batch
at a time; the journal write happens before the events become visible, so an acknowledged event is
always on disk and a reader never sees an event that a crash could take back.

Memory stays bounded however many channels are written: a channel's log leaves memory when it has
not been used for `idle` seconds, or when more than `max_channels` are held or their events pass
`max_bytes` (the least recently used first: events are up to 64 KiB each, so a count of logs
alone would let a writer of large events round many channels fill memory), and comes back from the journal's tail on its next use. Never while an append to it is
in flight, and never with a journal that keeps nothing (the log would be lost, not evicted).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Sequence

from .backend import Deliver, Draft, Journal, NullJournal, OutcomeUnknown
from .events import Event, now_ms, position
from .memory_back import BackReads
from .memory_reads import ChannelLog, ForwardReads

MAX_EMPTY_LOGS = 10_000
MAX_SUSPECT = 10_000
"""Channels whose last append failed with its outcome unknown, remembered for their readers."""


class MemoryBackend(ForwardReads, BackReads):
    def __init__(
        self,
        journal: Journal,
        history_size: int,
        *,
        max_channels: int = 10_000,
        max_bytes: int = 256 << 20,
        idle: float = 600.0,
    ) -> None:
        self._journal = journal
        self._history_size = history_size
        self._max_channels = max_channels
        self._max_bytes = max_bytes
        self.bytes = 0
        """Bytes of the events the logs in memory hold (`fourcast_bus_bytes_in_memory`)."""
        self._idle = idle
        self._evicts = not isinstance(journal, NullJournal)
        self._logs: OrderedDict[str, ChannelLog] = OrderedDict()
        """Written channels' logs, least recently used first."""
        self._appending: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.evicted = 0
        """Logs that left memory so far (a metric)."""
        self._empty: OrderedDict[str, ChannelLog] = OrderedDict()
        self._loading: dict[str, asyncio.Future[ChannelLog]] = {}
        self._suspect: dict[str, int] = {}
        """Channels whose last append failed, and their head before it (see `append`)."""
        self._deliver: Deliver = lambda events: None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        if self._evicts:
            self._sweeper = asyncio.create_task(self._sweep(), name="bus-evict")

    async def stop(self) -> None:
        self._deliver = lambda events: None
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    @property
    def channels_in_memory(self) -> int:
        return len(self._logs)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self._idle / 4))
            self.evict()

    def _over(self) -> bool:
        return len(self._logs) > self._max_channels or self.bytes > self._max_bytes

    def _keep(self, channel: str, log: ChannelLog) -> None:
        if channel not in self._logs:
            self.bytes += log.bytes
        self._logs[channel] = log

    def _forget(self, channel: str) -> None:
        log = self._logs.pop(channel, None)
        if log is not None:
            self.bytes -= log.bytes

    def evict(self, now: float | None = None) -> None:
        """Drop the logs idle for `idle` seconds and those over `max_channels` or `max_bytes`
        (LRU first)."""
        if not self._evicts:
            return
        horizon = (time.monotonic() if now is None else now) - self._idle
        logs = self._logs
        for _ in range(len(logs)):
            channel, log = next(iter(logs.items()))
            if not self._over() and log.used > horizon:
                return
            if channel in self._appending:
                logs.move_to_end(channel)  # its append is awaiting the journal: keep it
                continue
            self._forget(channel)
            self.evicted += 1

    async def _log(self, channel: str) -> ChannelLog:
        log = self._logs.get(channel)
        if log is not None:
            log.used = time.monotonic()
            self._logs.move_to_end(channel)
            return log
        log = self._empty.get(channel)
        if log is not None:
            self._empty.move_to_end(channel)
            return log
        pending = self._loading.get(channel)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ChannelLog] = asyncio.get_running_loop().create_future()
        self._loading[channel] = future
        try:
            events, head = await self._journal.tail(channel, self._history_size)
            log = ChannelLog(events, head)
            known = self._suspect.pop(channel, None)
            if known is not None and head > known:
                # Kept by an append reported as failed: live readers get them now, in order.
                self._deliver([e for e in events if position(e) > known])
            if head:
                self._keep(channel, log)
                if self._over():
                    self.evict()
            else:
                # Channels never written to are remembered in a bounded LRU: reading made-up
                # channel names must not grow memory without end.
                self._empty[channel] = log
                if len(self._empty) > MAX_EMPTY_LOGS:
                    self._empty.popitem(last=False)
            future.set_result(log)
            return log
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._loading[channel]

    async def append(self, drafts: Sequence[Draft]) -> list[Event]:
        self._appending = {d.channel for d in drafts}
        try:
            return await self._append(drafts)
        finally:
            self._appending = set()
            if self._over():
                self.evict()

    async def _append(self, drafts: Sequence[Draft]) -> list[Event]:
        logs = {d.channel: await self._log(d.channel) for d in drafts}
        for channel, log in logs.items():
            # A channel written to for the first time leaves the bounded LRU of empty ones.
            self._empty.pop(channel, None)
            self._keep(channel, log)
        heads = {channel: log.head for channel, log in logs.items()}
        ts = now_ms()
        events = []
        for draft in drafts:
            heads[draft.channel] += 1
            events.append(
                Event(draft.channel, draft.type, draft.data, ts, draft.sender, heads[draft.channel])
            )
        keys = [draft.idempotency_key for draft in drafts]
        try:
            # Keys go with their events, in one transaction: a retry after a restart finds them.
            if any(keys):
                await self._journal.append(events, keys)
            else:
                await self._journal.append(events)
        except BaseException as exc:
            # The outcome may be unknown (a COMMIT whose reply was lost may have landed): forget
            # these channels, so that their next use reloads the head from the journal instead
            # of numbering from a head the table has passed; what did land is delivered then.
            for channel, log in logs.items():
                self._forget(channel)
                self._suspect.setdefault(channel, log.head)
            while len(self._suspect) > MAX_SUSPECT:
                # Bounded through a long outage: a channel forgotten here is still reloaded
                # from the journal; only its live readers miss what a failed append kept.
                del self._suspect[next(iter(self._suspect))]
            if isinstance(exc, Exception):
                raise OutcomeUnknown(str(exc), events) from exc
            raise
        # Visible only once durable; nothing below awaits, so no reader sees a half-applied batch.
        for event in events:
            log = logs[event.channel]
            log.events.append(event)
            log.head = position(event)
            log.bytes += len(event.json)
            self.bytes += len(event.json)
        for log in logs.values():
            self._trim(log)
        self._deliver(events)
        return events

    def _trim(self, log: ChannelLog) -> None:
        excess = len(log.events) - self._history_size
        # Trim in chunks so that appending stays amortised O(1).
        if excess > max(16, self._history_size // 4):
            log.trimmed_upto = position(log.events[excess - 1])
            gone = sum(len(e.json) for e in log.events[:excess])
            del log.events[:excess]
            log.bytes -= gone
            self.bytes -= gone

    async def publish_ephemeral(self, event: Event) -> None:
        self._deliver([event])

    async def listen(self, channel: str) -> None:
        return None

    async def unlisten(self, channel: str) -> None:
        return None

    async def check(self) -> None:
        await self._journal.check()
