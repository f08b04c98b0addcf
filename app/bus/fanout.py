"""The fan-out's common case: one durable event written straight to the sockets of every reader
that keeps up.

A sink that is `idle` (nothing queued, its writer parked or gone) and has a wire (`Sink.
fan_out_through`: how its transport encodes an event, whether its socket takes bytes now, and the
write) gets the event's bytes, encoded once per transport, with a few attribute reads and, where
the server offers a gate, no call of ours per reader. Everything else (a reader catching up, a
queue not empty, a socket paused or closing, a write refused) goes through the subscription's
`offer` and the sink's queue, where slow readers are dealt with.
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


class Gate(Protocol):
    open: bool
    """True while the connection takes bytes written straight to its socket."""


# What a sink without a wire holds (never read: such a sink is never idle).
def no_encoding(event: Event) -> bytes:
    raise RuntimeError("this sink has no wire")


def refuse(data: bytes) -> bool:
    return False


def always_closing() -> bool:
    return True


class Shut:
    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = False


SHUT = Shut()


def fan_out(
    subs: Iterable[Subscription],
    batch: list[Event],
    offer: Callable[[Subscription, list[Event]], None],
) -> None:
    """One durable event to every subscriber of its channel: the fan-out's common case. A
    caught-up reader whose sink is idle and whose socket is open gets the event's bytes written
    straight to it (with a few attribute reads, and no call of ours where the server offers a
    gate); any other reader, or a socket that will not take the bytes now, goes through
    `offer` and its sink's queue."""
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
            sink.idle
            and size <= sink.max_bytes
            and not sub.catching_up
            and sink.wire_gate.open
            and not sink.wire_closing()
        ):
            if seq <= sub.last_seq:
                continue  # delivered already (by its catch-up)
            if sink.wire_encode is not encode:
                encode = sink.wire_encode
                data = encode(event)  # the event keeps its bytes for each transport
            try:
                refused = sink.wire_write(data) is False
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
