"""Catch-up (app/bus/catchup.py): live events held while history is copied reach the reader at
the seam, ephemeral ones (presence, typing) too, however many pages the history takes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from app.bus import Bus, NullJournal, ReadResult
from app.bus.catchup import catch_up
from app.bus.events import Event, now_ms
from app.bus.hub import Subscription
from app.bus.idempotency import MemoryIdempotencyStore
from app.bus.memory import MemoryBackend
from app.bus.sink import Sink

CH = "room:catchup"


class ArrivingWhileRead:
    """The in-memory backend's reads, with live events arriving during the first one (offered to
    the subscription, as the hub does while it catches up)."""

    def __init__(self, inner: MemoryBackend, arrive: Callable[[], None]) -> None:
        self.inner = inner
        self.arrive: Callable[[], None] | None = arrive

    async def read(self, channel: str, after: int | None, limit: int) -> ReadResult:
        result = await self.inner.read(channel, after, limit)
        if self.arrive is not None:
            self.arrive, arrive = None, self.arrive
            arrive()
        return result


async def test_live_events_held_over_several_pages_of_history_all_reach_the_reader() -> None:
    backend = MemoryBackend(NullJournal(), history_size=100)
    bus = Bus(backend, MemoryIdempotencyStore(ttl=60), commit_linger=0)
    await bus.start()
    try:
        history = [
            (await bus.publish(CH, "t", b'{"n":%d}' % n, "service:svc"))[0] for n in range(6)
        ]
        sink = Sink(4, 1 << 20)  # a page of two events: the history takes three
        sub = Subscription(CH, sink)
        joined = Event(CH, "presence.join", b'{"user":"u1"}', now_ms(), "server")
        reads = ArrivingWhileRead(backend, lambda: sub.offer([joined]))
        copying = asyncio.ensure_future(catch_up(reads, sub, 0))  # type: ignore[arg-type]
        received: list[object] = []
        while not copying.done():  # the reader takes what the catch-up pages give it
            taking = asyncio.ensure_future(sink.take())
            done, _ = await asyncio.wait(
                {taking, copying}, timeout=10, return_when=asyncio.FIRST_COMPLETED
            )
            assert done, "the catch-up stalled"
            if taking.done():
                received.extend(taking.result())
            else:
                taking.cancel()
        await copying
        received.extend(await sink.take(timeout=0))  # what the seam handed over
    finally:
        await bus.stop()
    assert received[: len(history)] == history
    assert received[-1] is joined
