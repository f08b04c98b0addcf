"""Polls: what a short or long poll answers, and where a long poll waits for it.

A short poll is one read. A long poll that finds nothing is *parked* (app/bus/parking.py): it
waits with no task of its own until its channel's next event or the end of its wait, and is then
answered by a read shared with every poll of that channel holding the same cursor. Both ways in
use this one mechanism: `answer_now` + `park` from a callback (the poll core, app/web/poll.py)
and the awaited `poll` (tests, and anything that would rather await).

A backend offering `SyncReads` or `HeldReads` (app/bus/capabilities.py) answers from memory, so
a poll is answered and parked from a callback. Otherwise reads are awaited, and a parked poll's
answer arrives asynchronously, one read task per distinct cursor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .backend import Backend, BusUnavailable, ReadResult
from .capabilities import HeldReads, SyncReads
from .events import Event, format_poll_cursor, now_ms, position
from .holds import ListenHolds
from .hub import Hub
from .parking import Answer, ParkedPoll, PollParking

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PollResult:
    events: list[Event]
    next: str
    reset: bool
    truncated: bool = False
    """The page was cut at the byte cap; `next` continues it."""


class Polls:
    def __init__(
        self,
        hub: Hub,
        backend: Backend,
        listen: Callable[[str], Awaitable[None]],
        release: Callable[[str], Awaitable[None]],
        draining: Callable[[], bool],
        *,
        max_read_bytes: int = 0,
        max_held_channels: int = 10_000,
    ) -> None:
        self._hub = hub
        self._backend = backend
        self.sync_reads: SyncReads | None = backend if isinstance(backend, SyncReads) else None
        """The backend's reads without awaiting, when it offers them."""
        self._listen = listen
        self._release = release
        self._draining = draining
        self._parking = PollParking(hub, self._answer)
        self.held_reads: HeldReads | None = (
            backend if self.sync_reads is None and isinstance(backend, HeldReads) else None
        )
        self.holds = ListenHolds(
            listen, release, self._parking.holds, max_channels=max_held_channels
        )
        """Polled channels kept listened (backends with `HeldReads`): app/bus/holds.py."""
        self._reads: set[asyncio.Task[None]] = set()
        self._max_read_bytes = max_read_bytes
        """Bytes of events in one poll answer (0: no cap); at least one event always goes."""
        self.truncated_pages = 0

    @property
    def parked(self) -> int:
        """Long polls waiting now (the `fourcast_long_polls_waiting` gauge)."""
        return len(self._parking)

    def answer_now(
        self, channel: str, after: int | None, marker: float, limit: int
    ) -> PollResult | None:
        """What a poll answers right now, without awaiting; None when the backend must be
        awaited (a channel not in memory yet, or, with `HeldReads`, not held or a cursor the
        backend's memory does not cover)."""
        read = self._read_now(channel, after, limit)
        return None if read is None else self.result(read, channel, marker)

    def _read_now(self, channel: str, after: int | None, limit: int) -> ReadResult | None:
        reads = self.sync_reads
        if reads is not None:
            return reads.read_now(channel, after, limit)
        held = self.held_reads
        if held is None or after is None or not self.holds.ready(channel):
            return None
        return held.read_held(channel, after, limit)

    def _head_now(self, channel: str) -> int | None:
        reads = self.sync_reads
        if reads is not None:
            return reads.head_now(channel)
        held = self.held_reads
        if held is None or not self.holds.ready(channel):
            return None
        return held.head_held(channel)

    def up_to_date(self, channel: str, after: int, marker: float) -> bool:
        """True when a poll from `after` and `marker` would certainly find nothing now: checked
        without building the empty answer that a poll about to be parked would throw away."""
        head = self._head_now(channel)
        return (
            head is not None and head == after and not self._hub.recent_ephemeral(channel, marker)
        )

    def park(
        self, channel: str, after: int, marker: float, limit: int, wait: float, done: Answer
    ) -> ParkedPoll:
        """Wait for the channel's next event or `wait` seconds, with no task; `done` gets the
        answer once (None: the backend failed to read). `cancel` forgets the poll.

        Without `SyncReads` the channel must be listened to while parked: by `poll`, or held
        (`answer_now` or `up_to_date` found it held)."""
        deadline = self._parking.time() + wait
        poll = ParkedPoll(channel, after, marker, limit, deadline, done)
        self._parking.park(poll)
        return poll

    def cancel(self, poll: ParkedPoll) -> None:
        self._parking.cancel(poll)

    def end(self, select: Callable[[ParkedPoll], bool]) -> None:
        """Answer now the parked polls `select` picks, as at the end of their wait."""
        self._parking.end(select)

    async def poll(
        self, channel: str, after: int | None, marker: float | None, limit: int, wait: float
    ) -> PollResult:
        """Short poll (wait=0) or long poll, awaited. Raises BusUnavailable when the backend
        cannot read."""
        if marker is None:
            marker = now_ms()
        if wait <= 0 or after is None:
            return self.result(await self._backend.read(channel, after, limit), channel, marker)
        try:
            await self._listen(channel)  # counted even when it fails: released below
            answer: asyncio.Future[PollResult | None] = asyncio.get_running_loop().create_future()
            # Parked before reading, so an event appended while the read is on its way wakes it.
            parked = self.park(channel, after, marker, limit, wait, partial_set(answer))
            try:
                result = self.result(
                    await self._backend.read(channel, after, limit), channel, marker
                )
                if result.events or result.reset or self._draining():
                    return result
                woken = await answer
            finally:
                self.cancel(parked)
            if woken is None:
                raise BusUnavailable(f"could not read {channel}")
            return woken
        finally:
            await self._release(channel)

    def result(self, read: ReadResult, channel: str, marker: float) -> PollResult:
        """A poll's answer: the durable events read, plus live-only events since `marker`."""
        cap = self._max_read_bytes
        if cap and len(read.events) > 1:
            size = 0
            for index, event in enumerate(read.events):
                size += len(event.json)
                if size > cap and index:
                    # Cut before this event; the live-only events wait for the next page too.
                    self.truncated_pages += 1
                    page = read.events[:index]
                    cursor = format_poll_cursor(position(page[-1]), marker)
                    return PollResult(page, cursor, read.reset, truncated=True)
        live = self._hub.recent_ephemeral(channel, marker)
        if not live:  # the usual case, kept cheap: it runs for every poll
            return PollResult(read.events, format_poll_cursor(read.next, marker), read.reset)
        seen = max([marker, *(e.ts for e in live)])  # other nodes' clocks: not in order
        return PollResult([*read.events, *live], format_poll_cursor(read.next, seen), read.reset)

    def _answer(self, polls: list[ParkedPoll]) -> None:
        """Answer polls of one channel woken (or timed out) together. Pollers that follow a busy
        channel mostly hold the same cursor, so each distinct read is done once for all."""
        groups: dict[tuple[int, int], list[ParkedPoll]] = {}
        for poll in polls:
            key = (poll.after, poll.limit)
            group = groups.get(key)
            if group is None:
                groups[key] = [poll]
            else:
                group.append(poll)
        for (after, limit), group in groups.items():
            channel = group[0].channel
            read = self._read_now(channel, after, limit)
            if read is None:
                # Awaited: not held in memory (or no longer).
                task = asyncio.ensure_future(self._read_for(group, channel, after, limit))
                self._reads.add(task)
                task.add_done_callback(self._reads.discard)
            else:
                self._give(group, read)

    async def _read_for(
        self, group: list[ParkedPoll], channel: str, after: int, limit: int
    ) -> None:
        try:
            read = await self._backend.read(channel, after, limit)
        except Exception as exc:
            log.warning("reading %s for parked polls failed: %s", channel, exc)
            self._give(group, None)
            return
        self._give(group, read)

    def _give(self, group: list[ParkedPoll], read: ReadResult | None) -> None:
        """Each poll its answer from `read` (None: the read failed)."""
        for poll in group:
            try:
                poll.done(None if read is None else self.result(read, poll.channel, poll.marker))
            except Exception:
                # One poll's failing answer must not cost the others theirs.
                log.exception("answering a parked long poll failed")


def partial_set(future: asyncio.Future[PollResult | None]) -> Answer:
    """A `done` for `park` that resolves `future` (once; later answers are dropped)."""

    def done(result: PollResult | None) -> None:
        if not future.done():
            future.set_result(result)

    return done
