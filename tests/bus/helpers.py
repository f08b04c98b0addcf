"""Helpers for the bus tests: publishing in bulk and collecting what a sink receives, with timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson

from app.bus import Bus, BusUnavailable, Event
from app.bus.sink import Item, Sink

SENDER = "service:test"


def durable(items: list[Item]) -> list[Event]:
    return [i for i in items if isinstance(i, Event) and i.seq is not None]


def seqs(items: list[Item] | list[Event]) -> list[int | None]:
    return [i.seq for i in items if isinstance(i, Event)]


async def publish(bus: Bus, channel: str, n: int = 1, *, type: str = "test") -> list[Event]:
    """Publish `n` events at once: they are enqueued together, so one commit usually keeps them all."""
    results = await asyncio.gather(
        *(bus.publish(channel, type, orjson.dumps({"i": i}), SENDER) for i in range(n))
    )
    return [event for event, _ in results]


async def publish_one(bus: Bus, channel: str, i: int = 0, *, type: str = "test") -> Event:
    event, _ = await bus.publish(channel, type, orjson.dumps({"i": i}), SENDER)
    return event


async def publish_retrying(bus: Bus, channel: str, i: int) -> Event:
    """A publish once the node's command pool has reconnected to a restarted Redis."""
    async with asyncio.timeout(15):
        while True:
            try:
                return await publish_one(bus, channel, i)
            except BusUnavailable:
                await asyncio.sleep(0.05)  # the pool reconnecting, not synchronisation


async def collect(
    sink: Sink,
    until: Callable[[list[Item]], bool],
    timeout: float = 5,
) -> list[Item]:
    """Drain `sink` until `until(items)` holds; fails (TimeoutError) instead of hanging."""
    items: list[Item] = []
    async with asyncio.timeout(timeout):
        while not until(items):
            batch = await sink.take()
            if not batch and sink.closed:
                raise AssertionError(f"sink closed before the condition held; got {seqs(items)}")
            items.extend(batch)
    return items


def up_to(seq: int) -> Callable[[list[Item]], bool]:
    """Condition: a durable event with cursor >= `seq` has arrived."""
    return lambda items: any(e.seq is not None and e.seq >= seq for e in durable(items))


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (bounded) until `condition` holds: a loop step at a time, no sleep to guess with."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)
