"""Reading a channel's log back from a cursor, newest first (room history pages).

A page of the past reads what it needs from the `before` it is given, never the whole retained
log: what a reader asks for costs it about what it gets (see `Backend.read_back`).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Protocol

from .backend import BackPage
from .events import Event, position


class _Log(Protocol):
    events: list[Event]
    head: int
    trimmed_upto: int


class BackReads:
    """Mixed into MemoryBackend: the attributes below are set by its constructor."""

    _history_size: int

    if TYPE_CHECKING:  # provided by MemoryBackend

        async def _log(self, channel: str) -> _Log: ...

    async def retained_below(self, channel: str, before: int | None) -> int:
        log = await self._log(channel)
        events = log.events
        first = max(0, len(events) - self._history_size)
        if before is None:
            return len(events) - first
        oldest_retained = position(events[first]) - 1 if first < len(events) else log.head
        if before > log.head or before < max(log.trimmed_upto, oldest_retained):
            return 0  # as `read` would reset
        return bisect_left(events, before, lo=first, key=position) - first

    async def read_back(self, channel: str, before: int | None, limit: int) -> BackPage:
        events = (await self._log(channel)).events
        first = max(0, len(events) - self._history_size)
        end = len(events)
        if before is not None:
            end = bisect_left(events, before, lo=first, key=position)
        start = max(first, end - limit)
        page = events[start:end][::-1]
        return BackPage(page, len(page), position(page[-1]) if page and start > first else None)
