"""A sink: a connection's bounded queue of outgoing items, the one place a slow reader is dealt with.

The hub pushes into a sink synchronously, never awaiting a socket, so one stalled reader cannot slow
the fan-out to anyone else. A sink with a `direct` writer whose socket accepts the bytes at once
writes them during the push; otherwise its own writer task is woken to wait for the socket. When a
sink's queue is over its event or byte bound, the sink is marked overflowed and its writer ends the
connection with the transport's "too slow" signal; the client resumes by cursor, so nothing durable
is lost and the server's memory stays bounded. How a transport hooks up its writers, and the
fan-out's straight writes to a writable sink's socket, are in app/bus/direct.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Literal

from .direct import DirectWrites
from .events import Event
from .fanout import NO_SOCKET, Counter, Socket, no_encoding

Item = Event | tuple[Literal["reset"], str, int] | tuple[Literal["text"], str]
"""An event, a reset signal for a channel (with the cursor the reader now stands after), or a
transport's own control message."""


class SinkOverflow(Exception):
    """The reader fell further behind than its queue allows."""


class Sink(DirectWrites):
    __slots__ = (
        "_closed",
        "_emptied",
        "_queue",
        "_wakeup",
        "max_bytes",
        "max_events",
        "on_overflow",
        "overflowed",
        "queued_bytes",
    )

    def __init__(self, max_events: int, max_bytes: int) -> None:
        # A list, not a deque: it is always emptied whole, and an empty list is a tenth of the
        # size of an empty deque, which adds up over many idle connections.
        self._queue: list[Item] = []
        self._wakeup: asyncio.Future[None] | None = None
        self._emptied: asyncio.Future[None] | None = None
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.queued_bytes = 0
        self.overflowed = False
        self.on_overflow: Callable[[], None] | None = None
        """Called as the sink overflows: a writer waiting in a send (for a reader that stopped
        reading) would find the overflow only once that send ends, its send timeout at worst."""
        self._closed = False
        self.direct: Callable[[Sequence[Item]], bool] | None = None
        """A synchronous writer, tried before waking the async writer: True when it wrote
        everything it was given (see app/web/api/socket.py and stream.py)."""
        self.start_writer: Callable[[], None] | None = None
        """With `direct`: the async writer runs only while the socket is behind (see
        `writer_leaving`), and this starts it again when a write cannot be done at once."""
        self._writer_gone = False
        self.wire_encode: Callable[[Event], bytes] = no_encoding
        """With `direct`, how the hub's fan-out writes an event straight to the socket (see
        `fan_out_through`). Read only while `writable`, which a sink without them never is."""
        self.socket: Socket = NO_SOCKET
        self.wire_counter: Counter | None = None
        self.idle = False
        """True while nothing is queued, the sink is open, its writer is parked or gone and it
        has a socket (kept up to date, with `writable`, by every change below)."""
        self.gate_open = False
        """What the server last said through `set_gate`: its socket takes bytes now."""
        self.writable = False
        """`idle` and `gate_open`: the hub may write an event straight to the socket (one
        attribute for the fan-out to read)."""

    def __len__(self) -> int:
        return len(self._queue)

    def push_many(self, events: Sequence[Event]) -> None:
        """Queue a batch, then wake (or write) once for all of it.

        `events` may be the very list handed to every other subscriber: it is read, never kept.
        """
        if self.overflowed or self._closed:
            return
        for event in events:
            if not self._add(event, event.size):
                break
        self._wake()

    def push_text(self, text: str) -> None:
        """A control message (ack, error, pong) for the same writer, under the same bounds."""
        if not self.overflowed and not self._closed:
            self._append(("text", text), len(text))

    def _append(self, item: Item, size: int) -> None:
        self._add(item, size)
        self._wake()

    def _add(self, item: Item, size: int) -> bool:
        """Queue one item; False (and overflowed) when it does not fit."""
        self._set_idle(False)
        if len(self._queue) >= self.max_events or self.queued_bytes + size > self.max_bytes:
            self.overflowed = True
            self._queue.clear()
            self.queued_bytes = 0
            if self.on_overflow is not None:
                self.on_overflow()
            return False
        self._queue.append(item)
        self.queued_bytes += size
        return True

    def push_reset(self, channel: str, after: int) -> None:
        """The reader's cursor was not one to resume after: it now stands `after` (a reader who
        kept its old cursor would be reset again on each resume, on an empty channel)."""
        if not self.overflowed and not self._closed:
            self._set_idle(False)
            self._queue.append(("reset", channel, after))
            self._wake()

    def wake(self) -> None:
        """Wake a writer parked in `take` with nothing to write (it sends a keepalive)."""
        self._set_idle(False)
        _set(self._wakeup)

    def close(self) -> None:
        """Wake the writer so it ends (shutdown, unsubscribe-all)."""
        self._closed = True
        self._set_idle(False)
        self._wake()
        _set(self._emptied)

    @property
    def closed(self) -> bool:
        return self._closed

    async def wait_for_room(self, n: int, size: int = 0) -> None:
        """Wait until `n` more events of `size` bytes in all fit (catch-up paces itself to the
        reader, on both bounds: a page of large events must not overflow a reader keeping up)."""
        while (
            len(self._queue) + n > self.max_events
            or (self._queue and self.queued_bytes + size > self.max_bytes)
        ) and not (self.overflowed or self._closed):
            self._emptied = asyncio.get_running_loop().create_future()
            try:
                await self._emptied
            finally:
                self._emptied = None

    def _wake(self) -> None:
        waiter = self._wakeup
        if not self._writer_gone and (waiter is None or waiter.done()):
            return  # the writer is busy and will find the new items itself
        if self.direct is not None and self._queue and not (self.overflowed or self._closed):
            # The writer is parked (or gone), so nothing is in flight before these items: write
            # them now, synchronously, with no task switch. Only when the socket will not take
            # them (the peer is slow) is the writer woken, to wait with flow control and a send
            # timeout.
            items = self._queue
            if self.direct(items):
                self._queue = []
                self.queued_bytes = 0
                self._set_idle(self.wire_counter is not None)
                _set(self._emptied)
                return
        self._rouse(waiter)

    def _rouse(self, waiter: asyncio.Future[None] | None) -> None:
        self._set_idle(False)
        if self._writer_gone:
            self._writer_gone = False
            if self.start_writer is not None:
                self.start_writer()
        else:
            _set(waiter)

    async def take(self, timeout: float | None = None) -> list[Item]:
        """Everything queued, waiting up to `timeout` for something; [] on timeout or close.

        Raises SinkOverflow once the reader has fallen too far behind.
        """
        if not self._queue and not self.overflowed and not self._closed:
            loop = asyncio.get_running_loop()
            wakeup = self._wakeup = loop.create_future()
            # One timer that wakes the writer, not asyncio.wait_for's waiter future and
            # callbacks: an idle SSE stream waits here with a keepalive timeout all its life.
            timer = None if timeout is None else loop.call_later(timeout, self.wake)
            self._set_idle(self.wire_counter is not None and self.direct is not None)
            try:
                await wakeup
            finally:
                self._wakeup = None
                self._set_idle(False)
                if timer is not None:
                    timer.cancel()
        if self.overflowed:
            raise SinkOverflow
        items, self._queue = self._queue, []
        self.queued_bytes = 0
        _set(self._emptied)
        return items


def _set(future: asyncio.Future[None] | None) -> None:
    """Resolve a waiter, if there is one still waiting."""
    if future is not None and not future.done():
        future.set_result(None)
