"""Presence and typing on one node, against a real in-process bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from app.bus import Bus, NullJournal, Sink, create_bus
from app.features.presence import LocalMembership, LocalTypingState, Presence, Typing
from app.features.publishing import Publisher
from app.identity.limits import TokenBuckets
from app.identity.principal import Principal
from app.settings import Settings

ALICE = Principal("user", "alice", "Alice")
BOB = Principal("user", "bob", "Bob")
ROOM = "room:lobby"
LEASE = 0.3


@pytest.fixture
async def bus() -> AsyncIterator[Bus]:
    bus = create_bus(Settings(), NullJournal())
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture
async def publisher(bus: Bus) -> Publisher:
    return Publisher(bus, TokenBuckets(100, 100), 65536)


@pytest.fixture
async def presence(publisher: Publisher) -> AsyncIterator[Presence]:
    presence = Presence(publisher, LEASE, LocalMembership())
    await presence.start()
    yield presence
    await presence.stop()


@pytest.fixture
async def announcements(bus: Bus) -> AsyncIterator[Sink]:
    sink = Sink(1000, 1 << 20)
    async with bus.subscription(ROOM, sink, None):
        yield sink


async def drained(sink: Sink) -> list[tuple[str, str]]:
    items = await sink.take(timeout=0.05)
    return [
        (item.type, orjson.loads(item.data)["user"])
        for item in items
        if not isinstance(item, tuple)
    ]


async def test_two_tabs_join_once_and_leave_after_the_last(
    presence: Presence, announcements: Sink
) -> None:
    first = await presence.connect(ROOM, ALICE, "websocket")
    second = await presence.connect(ROOM, ALICE, "sse")
    assert await drained(announcements) == [("presence.join", "alice")]
    members = await presence.members(ROOM)
    assert [(m["user"], m["transports"]) for m in members] == [("alice", ["sse", "websocket"])]
    await presence.disconnect(first)
    assert await drained(announcements) == []
    await presence.disconnect(second)
    assert await drained(announcements) == [("presence.leave", "alice")]
    assert await presence.members(ROOM) == []


async def test_a_poller_stays_while_it_polls_and_leaves_when_its_lease_lapses(
    presence: Presence, announcements: Sink
) -> None:
    for _ in range(6):  # two lease periods of polling
        await presence.touch(ROOM, BOB, "shortpoll")
        await asyncio.sleep(LEASE / 3)
    assert await drained(announcements) == [("presence.join", "bob")]
    leave = await announcements.drain(timeout=LEASE * 4)
    assert [(i.type, orjson.loads(i.data)["user"]) for i in leave] == [("presence.leave", "bob")]  # type: ignore[union-attr]


async def test_a_long_poll_holds_presence_for_its_wait(
    presence: Presence, announcements: Sink
) -> None:
    await presence.touch(ROOM, BOB, "longpoll", hold=LEASE * 3)
    await asyncio.sleep(LEASE * 2)
    assert [m["user"] for m in await presence.members(ROOM)] == ["bob"]


async def test_typing_is_throttled_and_expires(publisher: Publisher) -> None:
    typing = Typing(publisher, LocalTypingState(throttle=0.2, expiry=0.3))
    first = await publisher.publish(ALICE, ROOM, "typing", {})
    second = await publisher.publish(ALICE, ROOM, "typing", {})
    assert first.event is not None and first.event.seq is None  # always ephemeral
    assert second.suppressed
    assert await typing.typing(ROOM) == [{"user": "alice", "name": "Alice"}]
    await asyncio.sleep(0.35)
    assert await typing.typing(ROOM) == []
    assert not (await publisher.publish(ALICE, ROOM, "typing", {})).suppressed
