"""Reading a channel's in-memory log forward from a cursor (polls, catch-up, streams).

The log record itself is here too: what a read may rely on (`trimmed_upto`, consecutive
cursors) is set where the log is kept (memory.py) and read here.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import OrderedDict
from typing import TYPE_CHECKING

from .backend import ReadResult
from .events import Event, position


class ChannelLog:
    __slots__ = ("bytes", "events", "head", "trimmed_upto", "used")

    def __init__(self, events: list[Event], head: int) -> None:
        self.events = events
        self.head = head
        self.bytes = sum(len(e.json) for e in events)
        self.used = time.monotonic()
        # Cursor of the newest event no longer retained: a reader behind it has missed something.
        self.trimmed_upto = events[0].seq - 1 if events and events[0].seq else head


class ForwardReads:
    """Mixed into MemoryBackend: the attributes below are set by its constructor."""

    _history_size: int
    _logs: OrderedDict[str, ChannelLog]
    _empty: OrderedDict[str, ChannelLog]

    if TYPE_CHECKING:  # provided by MemoryBackend: loads the log from the journal if needed

        async def _log(self, channel: str) -> ChannelLog: ...

    async def read(self, channel: str, after: int | None, limit: int) -> ReadResult:
        return self._read(await self._log(channel), after, limit)

    def read_now(self, channel: str, after: int | None, limit: int) -> ReadResult | None:
        """The same read without awaiting, when the channel's log is already in memory (None:
        it must first be loaded from the journal, so use `read`)."""
        log = self._logs.get(channel) or self._empty.get(channel)
        return None if log is None else self._read(log, after, limit)

    def head_now(self, channel: str) -> int | None:
        log = self._logs.get(channel) or self._empty.get(channel)
        return None if log is None else log.head

    def _read(self, log: ChannelLog, after: int | None, limit: int) -> ReadResult:
        # Indexes, not a slice of the retained history: this runs for every poll, and copying up
        # to `history_size` references each time would cost more than the rest of the read.
        events = log.events
        first = max(0, len(events) - self._history_size)
        if after is None:
            return ReadResult(events[max(first, len(events) - limit) :] if limit else [], log.head)
        if after == log.head:
            return ReadResult([], after)  # the common case for a poller that is up to date
        oldest_retained = position(events[first]) - 1 if first < len(events) else log.head
        if after > log.head or after < max(log.trimmed_upto, oldest_retained):
            # Unknown or too old: say so, and resume from the oldest retained event.
            batch = events[first : first + limit]
            return ReadResult(batch, position(batch[-1]) if batch else log.head, reset=True)
        # Cursors within a log are consecutive, so the position is arithmetic; checked, with a
        # search as the fallback should a journal ever hand back a gap.
        start = first + after - oldest_retained
        if not (
            first <= start <= len(events) and (start == first or events[start - 1].seq == after)
        ):
            start = bisect_right(events, after, lo=first, key=position)
        batch = events[start : start + limit]
        return ReadResult(batch, position(batch[-1]) if batch else after)


__all__ = ["ChannelLog", "ForwardReads"]
