"""Direct writes: a sink writing straight to its transport's socket, with no writer task while the
socket keeps up.

A transport hooks its writers up here: `write_on_demand` (a synchronous writer tried before the
async one, which runs only while the socket is behind) and `fan_out_through` (the socket). While a
sink is `writable` (idle: nothing queued, its writer parked or gone, a socket given; and its gate
open: the server says its socket takes bytes now, through `set_gate`), the hub's fan-out writes
an event's bytes straight to the socket (app/bus/fanout.py): the common case of fan-out, one event
to a reader that keeps up, costs a few attribute reads and one write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .events import Event
from .fanout import Counter, Socket

if TYPE_CHECKING:
    from .sink import Item


class DirectWrites:
    """Mixed into Sink, whose constructor sets these slots (one constructor: no extra call per
    connection); the sink's queue state below is Sink's own."""

    __slots__ = (
        "_writer_gone",
        "direct",
        "gate_open",
        "idle",
        "socket",
        "start_writer",
        "wire_counter",
        "wire_encode",
        "writable",
    )

    _queue: list[Item]
    _wakeup: asyncio.Future[None] | None
    _closed: bool
    overflowed: bool
    direct: Callable[[Sequence[Item]], bool] | None
    start_writer: Callable[[], None] | None
    wire_counter: Counter | None
    idle: bool
    gate_open: bool
    writable: bool
    socket: Socket
    wire_encode: Callable[[Event], bytes]

    if TYPE_CHECKING:  # provided by Sink

        def _wake(self) -> None: ...

    def _set_idle(self, idle: bool) -> None:
        # `writable` is what the fan-out reads: both conditions in one attribute, kept only
        # here and in `set_gate`.
        self.idle = idle
        self.writable = idle and self.gate_open

    def set_gate(self, is_open: bool) -> None:
        """Called by the server, at once and whenever it changes: whether the connection's
        socket takes bytes written straight to it now (see `fan_out` in app/server/)."""
        self.gate_open = is_open
        self.writable = is_open and self.idle

    def write_on_demand(
        self, direct: Callable[[Sequence[Item]], bool], start_writer: Callable[[], None]
    ) -> None:
        """Write through `direct`, with no writer task until a write cannot be done at once."""
        self.direct = direct
        self.start_writer = start_writer
        self._writer_gone = True
        if self._queue or self.overflowed or self._closed:
            self._wake()
        else:
            self._set_idle(self.wire_counter is not None)

    def fan_out_through(
        self, encode: Callable[[Event], bytes], socket: Socket, counter: Counter
    ) -> None:
        """Let the hub's fan-out write single events while the sink is writable: `encode(event)`
        is the event's bytes for this transport (one object shared by every reader), written by
        `socket.write(data)` unless `socket.is_closing()` (a `write` returning False did not write
        them after all), and counted by `counter`. The server says when its gate is open
        (`set_gate`); until it first does, nothing is written here."""
        self.wire_encode = encode
        self.socket = socket
        self.wire_counter = counter
        waiter = self._wakeup
        self._set_idle(
            self.direct is not None
            and not (self._queue or self.overflowed or self._closed)
            and (self._writer_gone or (waiter is not None and not waiter.done()))
        )

    def writer_leaving(self) -> bool:
        """Asked by an async writer with nothing left to write: True lets it end (its task and
        frames are most of what an idle connection would hold), direct writes go on, and
        `start_writer` is called when one cannot be done. False: keep draining."""
        if self.start_writer is None or self.direct is None:
            return False
        if self._queue or self.overflowed or self._closed:
            return False
        self._writer_gone = True
        self._set_idle(self.wire_counter is not None)
        return True
