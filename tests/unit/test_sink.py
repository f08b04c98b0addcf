"""The sink's on-demand writer: direct writes while the socket takes them, a writer task only
while it does not (an idle WebSocket holds no task)."""

from __future__ import annotations

from app.bus.events import Event
from app.bus.sink import Item, Sink


def event(seq: int) -> Event:
    return Event("public:s", "t", b"{}", 1.0, "service:x", seq)


class Socket:
    def __init__(self) -> None:
        self.accepts = True
        self.written: list[list[Item]] = []
        self.writers_started = 0

    def write(self, items: list[Item]) -> bool:
        if self.accepts:
            self.written.append(list(items))
        return self.accepts

    def start_writer(self) -> None:
        self.writers_started += 1


async def test_writes_go_direct_and_a_writer_starts_only_when_the_socket_is_behind() -> None:
    sink, socket = Sink(100, 1 << 20), Socket()
    sink.write_on_demand(socket.write, socket.start_writer)
    sink.push_many([event(1)])
    sink.push_text("pong")
    first, second = socket.written
    assert [e.seq for e in first] == [1]  # type: ignore[union-attr]
    assert second == [("text", "pong")]
    assert socket.writers_started == 0 and len(sink) == 0
    socket.accepts = False  # the peer stops reading
    sink.push_many([event(2)])
    sink.push_many([event(3), event(4)])
    assert socket.writers_started == 1  # once, not per push
    assert [e.seq for e in await sink.take()] == [2, 3, 4]  # what the writer task gets
    # Caught up again: the writer may end, and direct writes resume.
    assert sink.writer_leaving()
    socket.accepts = True
    sink.push_many([event(5)])
    assert socket.written[-1][0].seq == 5 and socket.writers_started == 1


async def test_a_writer_stays_while_anything_is_queued_or_the_sink_closes() -> None:
    sink, socket = Sink(100, 1 << 20), Socket()
    sink.write_on_demand(socket.write, socket.start_writer)
    socket.accepts = False
    sink.push_many([event(1)])
    assert not sink.writer_leaving()  # an event is waiting for it
    await sink.take()
    assert sink.writer_leaving()
    sink.close()  # shutdown: a writer must run to end the connection
    assert socket.writers_started == 2
    assert not sink.writer_leaving()


async def test_overflow_while_no_writer_starts_one_to_cut_the_reader_off() -> None:
    sink, socket = Sink(2, 1 << 20), Socket()
    sink.write_on_demand(socket.write, socket.start_writer)
    socket.accepts = False
    sink.push_many([event(1), event(2), event(3)])
    assert sink.overflowed and socket.writers_started == 1


def test_overflow_is_told_at_once_and_only_once() -> None:
    # A writer waiting in a send would otherwise learn of it only when that send ends.
    sink = Sink(2, 1 << 20)
    told: list[int] = []
    sink.on_overflow = lambda: told.append(len(sink))
    sink.push_many([event(1), event(2)])
    assert told == []
    sink.push_many([event(3), event(4)])
    assert told == [0] and sink.overflowed
    sink.push_many([event(5)])
    sink.push_text("{}")
    assert told == [0]
