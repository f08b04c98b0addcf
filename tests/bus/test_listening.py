"""Listening to a channel's backend once per node, through listeners that leave while it starts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from app.bus import Bus, BusUnavailable, Sink
from tests.bus.conftest import MakeBus, redis_only
from tests.bus.helpers import collect, publish_one, up_to

pytestmark = redis_only

CHANNEL = "public:listening"


class HeldListens:
    """The backend's `listen` waits at a gate (as while Redis answers slowly), noting the
    channels it was asked for."""

    def __init__(self, bus: Bus) -> None:
        self.gate = asyncio.Event()
        self.asked: list[str] = []
        self.reached = asyncio.Event()
        self._listen: Callable[[str], Awaitable[None]] = bus.backend.listen
        bus.backend.listen = self._held  # type: ignore[method-assign]

    async def _held(self, channel: str) -> None:
        self.asked.append(channel)
        self.reached.set()
        await self.gate.wait()
        await self._listen(channel)


async def test_a_reader_arriving_after_the_first_listener_left_still_gets_events(
    make_bus: MakeBus,
) -> None:
    bus = await make_bus()
    held = HeldListens(bus)
    sinks = [Sink(100, 1 << 20) for _ in range(3)]
    # The first reader asks the backend to listen; the second waits for that.
    first = asyncio.create_task(bus.subscribe(CHANNEL, sinks[0], None))
    second = asyncio.create_task(bus.subscribe(CHANNEL, sinks[1], None))
    await held.reached.wait()
    # The first leaves before the backend answered (its client went away).
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # A third arrives now, while the second has not yet woken up to the first one leaving.
    third = asyncio.create_task(bus.subscribe(CHANNEL, sinks[2], None))
    held.gate.set()
    subscriptions = [(await second)[0], (await third)[0]]
    event = await publish_one(bus, CHANNEL)
    assert event.seq is not None
    for sink in sinks[1:]:
        got = await collect(sink, up_to(event.seq))
        assert [e.seq for e in got if not isinstance(e, tuple)] == [event.seq]
    for subscription in subscriptions:
        await bus.unsubscribe(subscription)


async def test_waiting_listeners_share_the_first_ones_failure(make_bus: MakeBus) -> None:
    """A listen that fails (Redis unavailable) fails its waiters too, with no retry each."""
    bus = await make_bus()
    held = HeldListens(bus)
    failing = asyncio.Event()
    listen = bus.backend.listen

    async def fails(channel: str) -> None:
        await listen(channel)  # the gate
        if failing.is_set():
            raise BusUnavailable("redis is away")

    bus.backend.listen = fails  # type: ignore[method-assign]
    first = asyncio.create_task(bus.subscribe(CHANNEL, Sink(100, 1 << 20), None))
    second = asyncio.create_task(bus.subscribe(CHANNEL, Sink(100, 1 << 20), None))
    await held.reached.wait()
    failing.set()
    held.gate.set()
    for task in (first, second):
        with pytest.raises(BusUnavailable):
            await task
    assert held.asked == [CHANNEL]
    assert bus.hub.subscriber_count(CHANNEL) == 0
