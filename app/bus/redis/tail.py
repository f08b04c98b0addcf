"""The newest events of the channels a node listens to, as its reader handed them to the hub, so
that a poll at (or near) the head is answered from memory instead of an XRANGE round trip.

A channel's tail holds the events read after one entry this node saw (its `base`), contiguous and
of one epoch: exactly what a read of Redis after a cursor in that range returns (reads.py) at the
moment the reader took them. Anything that breaks that (a gap in the numbering, an entry of another
epoch, a malformed entry, the reader rebasing after the epoch changed) restarts the tail at the
next entry seen; a cursor outside a tail, of another epoch, or 0 (the start) is read from Redis.
Bounded: at most `keep` events per listened channel, and `max_bytes` of events over all of them
(events are up to 64 KiB each): past it the oldest events of the channel least recently added to
go first, which only moves that tail's base up; unlistening drops the channel's tail.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from itertools import islice

from ..backend import ReadResult
from ..events import Event, position
from .streams import make_cursor, split_cursor


class Tail:
    __slots__ = ("appended", "bytes", "epoch", "events", "head")

    def __init__(self, epoch: int, head: int, keep: int, appended: int = 0) -> None:
        self.epoch = epoch
        self.head = head
        """The seq of the newest entry seen; `events` are the ones just before and including it."""
        self.events: deque[Event] = deque(maxlen=keep)
        self.bytes = 0
        self.appended = appended
        """The newest seq this node appended: until the reader is there, the tail is behind."""


class Tails:
    def __init__(self, keep: int, max_bytes: int = 64 << 20) -> None:
        self._keep = keep
        self._max_bytes = max_bytes
        self._tails: dict[str, Tail] = {}
        self._holding: OrderedDict[str, Tail] = OrderedDict()
        """The tails holding events, the least recently added to first (the first to shrink)."""
        self.bytes = 0
        """Bytes of the events held (`fourcast_redis_tail_bytes`)."""

    @property
    def events(self) -> int:
        """Events held (a metric)."""
        return sum(len(tail.events) for tail in self._tails.values())

    def start(self, channel: str, epoch: int, seq: int, appended: int = 0) -> None:
        """The channel's newest entry is `seq` of `epoch`: what follows it will be known."""
        self.drop(channel)
        if self._keep > 0 and seq > 0:
            self._tails[channel] = Tail(epoch, seq, self._keep, appended)

    def add(self, channel: str, epoch: int, seq: int, event: Event) -> None:
        """The reader took entry `seq` (of `epoch`), well-formed, as `event`."""
        tail = self._tails.get(channel)
        if tail is None or tail.epoch != epoch or seq != tail.head + 1:
            # What came before it is not known here.
            appended = tail.appended if tail is not None and tail.epoch == epoch else 0
            self.start(channel, epoch, seq, appended)
            return
        events = tail.events
        if len(events) == events.maxlen:
            gone = len(events[0].json)  # the append lets it go
            tail.bytes -= gone
            self.bytes -= gone
        events.append(event)
        tail.head = seq
        size = len(event.json)
        tail.bytes += size
        self.bytes += size
        holding = self._holding
        holding[channel] = tail
        holding.move_to_end(channel)
        if self.bytes > self._max_bytes:
            self._shrink()

    def _shrink(self) -> None:
        """Let the oldest events go, from the tails least recently added to, until within
        `max_bytes`: each step lets one event go, so this costs what was added."""
        holding = self._holding
        while self.bytes > self._max_bytes and holding:
            tail = next(iter(holding.values()))
            gone = len(tail.events.popleft().json)
            tail.bytes -= gone
            self.bytes -= gone
            if not tail.events:
                holding.popitem(last=False)

    def appended(self, channel: str, epoch: int, seq: int) -> None:
        """This node appended entry `seq` of `epoch`: a poll here must see it (read your writes)
        even before the reader takes it, so the tail answers nothing until then."""
        tail = self._tails.get(channel)
        if tail is None:
            return
        if tail.epoch != epoch:
            self.drop(channel)  # a new epoch: the next entries restart it
        elif seq > tail.appended:
            tail.appended = seq

    def drop(self, channel: str) -> None:
        tail = self._tails.pop(channel, None)
        if tail is not None:
            self.bytes -= tail.bytes
            self._holding.pop(channel, None)

    def clear(self) -> None:
        self._tails.clear()
        self._holding.clear()
        self.bytes = 0

    def head(self, channel: str) -> int | None:
        """The cursor a read after the head answers with (nothing new), when known."""
        tail = self._tails.get(channel)
        if tail is None or tail.appended > tail.head:
            return None
        return make_cursor(tail.epoch, tail.head)

    def read(self, channel: str, after: int, limit: int) -> ReadResult | None:
        """What a read of Redis after `after` returns, when the tail knows it; else None."""
        tail = self._tails.get(channel)
        if tail is None or tail.appended > tail.head:
            return None
        epoch, seq = split_cursor(after)
        base = tail.head - len(tail.events)
        if epoch != tail.epoch or not base <= seq <= tail.head or seq == 0:
            return None
        start = seq - base
        events = list(islice(tail.events, start, start + limit))
        return ReadResult(events, position(events[-1]) if events else after)
