"""app/server/deadlines.py with a fake loop and fake transports: the clock is the test's."""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any

import pytest

from app.server.deadlines import Deadlines
from app.server.descriptors import DESCRIPTOR_RESERVE, socket_bound
from app.server.sweep import BATCH


class FakeLoop:
    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Callable[..., None], tuple[Any, ...]]] = []
        self.soon: list[tuple[Callable[..., None], tuple[Any, ...]]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> object:
        self.timers.append((self.now + delay, callback, args))
        return object()

    def call_soon(self, callback: Callable[..., None], *args: Any) -> object:
        self.soon.append((callback, args))
        return object()

    def turn(self) -> None:
        """One loop turn: the callbacks queued with call_soon so far."""
        ready, self.soon = self.soon, []
        for callback, args in ready:
            callback(*args)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, callback, args in due:
            callback(*args)


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False
        self.written = b""

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write(self, data: bytes) -> None:
        self.written += data


class State:
    def __init__(self) -> None:
        self.connections: set[Any] = set()


class FakeProtocol:
    def __init__(self, state: State, loop: FakeLoop) -> None:
        self.server_state = state
        self.loop = loop
        self.transport = FakeTransport()
        state.connections.add(self)


def make(head: float = 10, bound: int = 100) -> tuple[Deadlines, State, FakeLoop]:
    state, loop = State(), FakeLoop()
    return Deadlines(state, head, bound), state, loop


def test_a_silent_connection_is_closed_once_its_head_is_late() -> None:
    deadlines, state, loop = make(head=10)
    protocol = FakeProtocol(state, loop)
    assert deadlines.admit(protocol)
    loop.advance(9)
    assert not protocol.transport.closed
    loop.advance(2)
    assert protocol.transport.closed
    assert deadlines.closed["head_timeout"] == 1


def test_a_trickled_head_keeps_the_deadline_of_its_first_byte() -> None:
    deadlines, state, loop = make(head=10)
    protocol = FakeProtocol(state, loop)
    deadlines.admit(protocol)
    for _ in range(11):
        loop.advance(1)
        deadlines.waiting(protocol)  # another byte of the same head: no new start
    assert protocol.transport.closed


def test_a_complete_head_is_not_closed_and_the_next_one_starts_afresh() -> None:
    deadlines, state, loop = make(head=10)
    protocol = FakeProtocol(state, loop)
    deadlines.admit(protocol)
    loop.advance(5)
    deadlines.arrived(protocol)
    loop.advance(60)
    assert not protocol.transport.closed
    deadlines.waiting(protocol)  # a kept-alive connection's next request begins
    loop.advance(9)
    assert not protocol.transport.closed
    loop.advance(2)
    assert protocol.transport.closed


def test_beyond_the_bound_the_oldest_waiting_head_makes_room() -> None:
    deadlines, state, loop = make(head=60, bound=3)
    busy = FakeProtocol(state, loop)
    deadlines.admit(busy)
    deadlines.arrived(busy)
    waiting = [FakeProtocol(state, loop) for _ in range(2)]
    for protocol in waiting:
        assert deadlines.admit(protocol)
    newcomer = FakeProtocol(state, loop)
    assert deadlines.admit(newcomer)
    assert waiting[0].transport.closed and not waiting[1].transport.closed
    assert not busy.transport.closed and not newcomer.transport.closed
    assert deadlines.closed["evicted"] == 1


def test_beyond_the_bound_with_every_socket_busy_the_newcomer_gets_503() -> None:
    deadlines, state, loop = make(head=60, bound=2)
    for _ in range(2):
        protocol = FakeProtocol(state, loop)
        deadlines.admit(protocol)
        deadlines.arrived(protocol)
    newcomer = FakeProtocol(state, loop)
    assert not deadlines.admit(newcomer)
    assert newcomer.transport.closed
    assert newcomer.transport.written.startswith(b"HTTP/1.1 503 ")
    head, _, body = newcomer.transport.written.partition(b"\r\n\r\n")
    assert b"content-length: %d" % len(body) in head
    assert deadlines.closed["refused"] == 1


def test_the_socket_bound_fits_the_descriptor_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    assert socket_bound(25_000) == 1024 - DESCRIPTOR_RESERVE
    assert socket_bound(500) == 500


def test_a_body_is_due_within_its_own_deadline_from_the_end_of_the_head() -> None:
    state, loop = State(), FakeLoop()
    deadlines = Deadlines(state, 10, 100, body_timeout=30)
    protocol, quick = FakeProtocol(state, loop), FakeProtocol(state, loop)
    for p in (protocol, quick):
        deadlines.admit(p)
        loop.advance(1)
        deadlines.arrived(p)
        deadlines.body_due(p)
    loop.advance(5)
    deadlines.complete(quick)
    loop.advance(22)  # 29 s after the first head was in
    assert not protocol.transport.closed
    loop.advance(3)
    assert protocol.transport.closed and not quick.transport.closed
    assert deadlines.closed["body_timeout"] == 1


def test_an_idle_kept_alive_connection_goes_first_for_a_newcomer() -> None:
    deadlines, state, loop = make(head=60, bound=3)
    waiting = FakeProtocol(state, loop)
    deadlines.admit(waiting)
    kept = [FakeProtocol(state, loop) for _ in range(2)]
    for protocol in kept:
        deadlines.admit(protocol)
        deadlines.arrived(protocol)
        deadlines.idle(protocol)  # answered; the connection waits for its next request
    deadlines.waiting(kept[1])  # ...which has begun on the second one
    newcomer = FakeProtocol(state, loop)
    assert deadlines.admit(newcomer)
    assert kept[0].transport.closed
    assert not waiting.transport.closed and not kept[1].transport.closed


def test_heads_late_together_are_closed_a_batch_per_loop_turn() -> None:
    """A thousand sockets opened in the same second come due in the same sweep: closing them all
    in one callback would hold up every other connection for that long."""
    deadlines, state, loop = make(head=1, bound=10_000)
    late = [FakeProtocol(state, loop) for _ in range(2 * BATCH + 10)]
    for protocol in late:
        deadlines.admit(protocol)
    loop.advance(1.5)
    closed = [sum(p.transport.closed for p in late)]
    while loop.soon:
        loop.turn()
        closed.append(sum(p.transport.closed for p in late))
    assert closed == [BATCH, 2 * BATCH, 2 * BATCH + 10]
    assert deadlines.closed["head_timeout"] == len(late)


class Flow:
    read_paused = True


def test_a_body_queued_behind_a_response_is_not_late_while_the_server_reads_nothing() -> None:
    """A POST pipelined behind a parked long poll: uvicorn pauses reading at its head, so its
    body cannot arrive until the poll is answered. The client is not the one late."""
    state, loop = State(), FakeLoop()
    deadlines = Deadlines(state, 10, 100, body_timeout=30)
    queued = FakeProtocol(state, loop)
    queued.flow = Flow()  # type: ignore[attr-defined]
    deadlines.admit(queued)
    deadlines.arrived(queued)
    deadlines.body_due(queued)
    loop.advance(31)
    assert not queued.transport.closed
    queued.flow.read_paused = False  # type: ignore[attr-defined]  # the poll was answered
    loop.advance(30)
    assert queued.transport.closed and deadlines.closed["body_timeout"] == 1
