"""The fan-out's common case (app/bus/fanout.py): one durable event written straight to the
sockets of idle, caught-up readers, encoded once per transport and counted once per event; every
other reader goes through its sink's queue, in order, and one failing socket costs nobody else."""

from __future__ import annotations

import asyncio

from app.bus.events import Event
from app.bus.hub import Hub, Subscription
from app.bus.sink import Item, Sink

CHANNEL = "public:f"


def event(seq: int) -> Event:
    return Event(CHANNEL, "t", b'{"n":%d}' % seq, 1000.0 * seq, "service:x", seq)


def wired(seq: int) -> bytes:
    """What the test's transport writes for event `seq`."""
    return b"<" + event(seq).json + b">"


class Counter:
    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []

    def wrote(self, count: int, newest_ts_ms: float) -> None:
        self.calls.append((count, newest_ts_ms))


class Encoder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: Event) -> bytes:
        self.calls += 1
        return b"<" + event.json + b">"


class Socket:
    """A socket that takes every write."""

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        return None


class Reader:
    """A connection: its sink, and a socket (the sink's own) taking wire bytes or queued
    batches, whose server keeps the sink's gate."""

    def __init__(self, hub: Hub, encode: Encoder, counter: Counter) -> None:
        self.sink = Sink(100, 1 << 20)
        self.closing = False
        self.accepts = True
        self.raises = False
        self.wire: list[bytes] = []
        self.batches: list[list[Item]] = []
        self.writers_started = 0
        self.sink.write_on_demand(self.write_batch, self.start_writer)
        self.sink.fan_out_through(encode, self, counter)
        self.sink.set_gate(True)
        self.subscription = Subscription(CHANNEL, self.sink, catching_up=False)
        hub.add(self.subscription)

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> bool | None:
        if self.raises:
            raise OSError("socket gone")
        if not self.accepts:
            return False
        self.wire.append(data)
        return None  # as transport.write: anything but False is written

    def write_batch(self, items: list[Item]) -> bool:
        if self.accepts:
            self.batches.append(list(items))
        return self.accepts

    def start_writer(self) -> None:
        self.writers_started += 1


def setup(n: int) -> tuple[Hub, Encoder, Counter, list[Reader]]:
    hub, encode, counter = Hub(), Encoder(), Counter()
    hub.acquire(CHANNEL)
    return hub, encode, counter, [Reader(hub, encode, counter) for _ in range(n)]


def test_idle_readers_get_the_bytes_encoded_once_and_counted_once() -> None:
    hub, encode, counter, readers = setup(5)
    assert all(r.sink.idle for r in readers)
    hub.dispatch([event(1)])
    assert [r.wire for r in readers] == [[wired(1)]] * 5
    assert encode.calls == 1
    assert counter.calls == [(5, 1000.0)]
    assert all(r.subscription.last_seq == 1 and not r.batches for r in readers)


def test_a_closed_gate_or_a_closing_socket_sends_the_event_through_the_queue() -> None:
    hub, _, counter, (shut, closing, open_) = setup(3)
    shut.sink.set_gate(False)  # e.g. paused at the write buffer's high-water mark
    closing.closing = True
    hub.dispatch([event(1)])
    assert open_.wire and not shut.wire and not closing.wire
    # The sink's own path: its direct (checked) write, or a writer when that refuses too.
    assert [[i.seq for i in b] for b in shut.batches] == [[1]]  # type: ignore[union-attr]
    assert [[i.seq for i in b] for b in closing.batches] == [[1]]  # type: ignore[union-attr]
    assert counter.calls == [(1, 1000.0)]


def test_a_refused_write_queues_the_event_and_later_ones_follow_in_order() -> None:
    hub, _, _, (slow,) = setup(1)
    slow.accepts = False  # the socket will not take bytes now
    hub.dispatch([event(1)])
    assert not slow.sink.idle and slow.writers_started == 1 and len(slow.sink) == 1
    hub.dispatch([event(2)])  # not idle: queued behind the first, not written past it
    assert not slow.wire and len(slow.sink) == 2


async def test_the_writer_taking_the_queue_and_leaving_makes_the_sink_idle_again() -> None:
    hub, _, _, (slow,) = setup(1)
    slow.accepts = False
    hub.dispatch([event(1)])
    assert [e.seq for e in await slow.sink.take()] == [1]  # type: ignore[union-attr]
    assert not slow.sink.idle  # its writer is still running
    assert slow.sink.writer_leaving()
    assert slow.sink.idle
    slow.accepts = True
    hub.dispatch([event(2)])
    assert slow.wire == [wired(2)]


def test_a_reader_catching_up_or_ahead_is_not_written_to() -> None:
    hub, _, _, (catching, ahead) = setup(2)
    catching.subscription.catching_up = True
    ahead.subscription.last_seq = 5  # its catch-up delivered this event already
    hub.dispatch([event(3)])
    assert not catching.wire and [e.seq for e in catching.subscription.pending] == [3]
    assert not ahead.wire and not ahead.batches


def test_one_failing_socket_is_closed_and_costs_the_others_nothing() -> None:
    hub, _, counter, (broken, fine) = setup(2)
    broken.raises = True
    hub.dispatch([event(1)])
    assert broken.sink.closed and fine.wire == [wired(1)]
    assert counter.calls == [(1, 1000.0)]


def test_a_closed_or_overflowed_sink_is_never_idle() -> None:
    _, _, _, (closed, full) = setup(2)
    closed.sink.close()
    full.accepts = False
    full.sink.push_many([event(i) for i in range(1, 200)])  # over its 100 events
    assert full.sink.overflowed
    assert not closed.sink.idle and not full.sink.idle
    closed.sink.set_gate(True)
    full.sink.set_gate(True)  # the server: the socket takes bytes again
    assert not closed.sink.writable and not full.sink.writable


async def test_a_sink_parked_in_take_is_idle_until_woken() -> None:
    sink = Sink(100, 1 << 20)
    written: list[list[Item]] = []
    sink.direct = lambda items: written.append(list(items)) or True  # an SSE stream's writer
    sink.fan_out_through(Encoder(), Socket(), Counter())
    sink.set_gate(True)
    assert not sink.idle and not sink.writable  # its writer has not parked yet
    taking = asyncio.ensure_future(sink.take())
    await asyncio.sleep(0)
    assert sink.idle and sink.writable
    sink.wake()  # a keepalive is due
    assert not sink.idle and not sink.writable
    assert await taking == []
    assert not sink.idle


async def test_writable_needs_the_gate_open_and_the_sink_idle() -> None:
    _, _, _, (reader,) = setup(1)
    sink = reader.sink
    assert sink.writable
    sink.set_gate(False)  # the server: its socket is paused
    assert sink.idle and not sink.writable
    reader.accepts = False
    sink.push_many([event(1)])  # queued, and its writer started
    sink.set_gate(True)  # the socket drains, but what is queued goes first
    assert not sink.idle and not sink.writable
    assert [e.seq for e in await sink.take()] == [1]  # type: ignore[union-attr]
    assert sink.writer_leaving()
    assert sink.idle and sink.writable


class Recorder(Socket):
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def test_the_gate_told_first_as_the_servers_do_lets_the_fan_out_write() -> None:
    """The app's order: the server tells the gate (`fan_out(sink)`), then the sink is given
    its socket, then its direct writer; a control message written at once leaves it writable."""
    hub, encode, counter = Hub(), Encoder(), Counter()
    hub.acquire(CHANNEL)
    sink, socket = Sink(100, 1 << 20), Recorder()
    sink.set_gate(True)
    sink.fan_out_through(encode, socket, counter)
    direct: list[list[Item]] = []
    sink.write_on_demand(lambda items: direct.append(list(items)) or True, lambda: None)
    hub.add(Subscription(CHANNEL, sink, catching_up=False))
    hub.dispatch([event(1)])
    assert socket.written == [wired(1)]
    sink.push_text("ack")  # e.g. a WebSocket op's answer, through the sink's direct writer
    assert direct == [[("text", "ack")]] and sink.writable
    hub.dispatch([event(2)])
    assert socket.written == [wired(1), wired(2)]
