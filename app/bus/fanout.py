"""The fan-out's common case: one durable event written straight to the sockets of every reader
that keeps up.

A sink that is `writable` (idle: nothing queued, its writer parked or gone; and its gate open:
the server says its socket takes bytes now) gets the event's bytes, encoded once per transport,
written to its socket (`Sink.fan_out_through`: the server's transport itself, where it offers one),
with a few attribute reads and no call of ours per reader. Everything else (a reader catching up,
a queue not empty, a socket paused or closing, a write refused) goes through the subscription's
`offer` and the sink's queue, where slow readers are dealt with.

What a reader costs here is mostly the memory it touches, which the kernel's work between two
writes has evicted from the caches: under fourcast's protocols, the subscription, its sink and
the transport, and nothing else (bench/README.md, "Where fourcast's remaining cost goes").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from .events import Event

if TYPE_CHECKING:
    from .hub import Subscription

log = logging.getLogger(__name__)


class Counter(Protocol):
    def wrote(self, count: int, newest_ts_ms: float) -> None:
        """`count` events written, the newest stamped `newest_ts_ms`."""


class Socket(Protocol):
    """Where the fan-out writes a reader's bytes: the server's transport itself, or an object
    with the same two methods (a `write` that returns False did not write: the event is then
    queued)."""

    def is_closing(self) -> bool: ...

    def write(self, data: bytes, /) -> object: ...


# What a sink without a socket holds (never read: such a sink is never writable).
def no_encoding(event: Event) -> bytes:
    raise RuntimeError("this sink has no socket")


class NoSocket:
    __slots__ = ()

    def is_closing(self) -> bool:
        return True

    def write(self, data: bytes, /) -> bool:
        return False


NO_SOCKET = NoSocket()


def fan_out(
    subs: Iterable[Subscription],
    batch: list[Event],
    offer: Callable[[Subscription, list[Event]], None],
) -> None:
    """One durable event to every subscriber of its channel: the fan-out's common case. A
    caught-up reader whose sink is writable gets the event's bytes written straight to its
    socket; any other reader, or a socket that will not take the bytes now, goes through `offer`
    and its sink's queue."""
    event = batch[0]
    seq = event.seq
    if seq is None:
        raise ValueError("an ephemeral event is offered, not fanned out")
    size = len(event.json)
    encode: Callable[[Event], bytes] | None = None
    data = b""
    counter: Counter | None = None
    count = 0
    for sub in subs:
        sink = sub.sink
        if (
            sink.writable
            and size <= sink.max_bytes
            and not sub.catching_up
            and not (socket := sink.socket).is_closing()
        ):
            if seq <= sub.last_seq:
                continue  # delivered already (by its catch-up)
            if sink.wire_encode is not encode:
                encode = sink.wire_encode
                data = encode(event)  # the event keeps its bytes for each transport
            try:
                refused = socket.write(data) is False
            except Exception:
                log.exception("delivery to one subscriber failed; closing it")
                sink.close()
                continue
            if not refused:
                sub.last_seq = seq
                if sink.wire_counter is not counter:
                    if counter is not None:
                        counter.wrote(count, event.ts)
                    counter, count = sink.wire_counter, 0
                count += 1
                continue
        offer(sub, batch)
    if counter is not None:
        counter.wrote(count, event.ts)
