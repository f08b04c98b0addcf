"""Presence and typing on one node, against a real in-process bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.bus import Bus, Sink
from app.features.presence import Presence
from app.features.presence_shared import LocalMember, LocalMembership
from app.features.publishing import Publisher
from app.features.typing import LocalTypingState, Typing
from app.identity.limits import TokenBuckets
from app.identity.principal import Principal

ALICE = Principal("user", "alice", "Alice")
BOB = Principal("user", "bob", "Bob")
ROOM = "room:lobby"
LEASE = 0.3


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


class Clock:
    """Lease time moved by hand: no test waits out, or races, a lease."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


async def test_a_poller_stays_while_it_polls_and_leaves_when_its_lease_lapses(
    publisher: Publisher, announcements: Sink
) -> None:
    clock = Clock()
    presence = Presence(publisher, LEASE, LocalMembership(), clock=clock)
    for _ in range(6):  # two lease periods of polling
        await presence.touch(ROOM, BOB, "shortpoll")
        clock.now += LEASE / 3
        await presence.reap()
    assert await drained(announcements) == [("presence.join", "bob")]
    clock.now += LEASE
    await presence.reap()
    assert await drained(announcements) == [("presence.leave", "bob")]


async def test_a_long_poll_holds_presence_for_its_wait(
    publisher: Publisher, announcements: Sink
) -> None:
    clock = Clock()
    presence = Presence(publisher, LEASE, LocalMembership(), clock=clock)
    await presence.touch(ROOM, BOB, "longpoll", hold=LEASE * 3)
    clock.now += LEASE * 3.5  # past a lease, within the poll's wait and the lease after it
    await presence.reap()
    assert await drained(announcements) == [("presence.join", "bob")]
    clock.now += LEASE
    await presence.reap()
    assert await drained(announcements) == [("presence.leave", "bob")]


async def test_a_polls_end_renews_the_lease_of_the_member_its_start_found(
    publisher: Publisher, announcements: Sink
) -> None:
    clock = Clock()
    presence = Presence(publisher, LEASE, LocalMembership(), clock=clock)
    member, arriving = presence.touch_now(ROOM, BOB, "longpoll", LEASE * 4)
    assert member is not None and arriving is not None
    await arriving
    assert await drained(announcements) == [("presence.join", "bob")]
    clock.now += LEASE
    presence.renew(member, ROOM, BOB, "longpoll")  # answered: the lease runs from now
    assert member.polls["longpoll"] == clock.now + LEASE
    clock.now += LEASE * 1.01
    await presence.reap()
    assert await drained(announcements) == [("presence.leave", "bob")]
    assert not member.tracked


async def test_a_polls_end_after_its_member_left_finds_them_again_by_name(
    publisher: Publisher, announcements: Sink
) -> None:
    clock = Clock()
    # `members` reads the real clock: leases written far ahead of it stay live however slowly
    # this test runs.
    clock.now += 3600
    presence = Presence(publisher, LEASE, LocalMembership(), clock=clock)
    member, arriving = presence.touch_now(ROOM, BOB, "shortpoll")
    assert arriving is not None
    await arriving
    clock.now += LEASE * 1.01
    await presence.reap()
    assert await drained(announcements) == [("presence.join", "bob"), ("presence.leave", "bob")]
    presence.renew(member, ROOM, BOB, "shortpoll")  # the kept entry is gone: as `touch_now`
    await asyncio.gather(*presence._arrivals)
    assert await drained(announcements) == [("presence.join", "bob")]
    assert [m["user"] for m in await presence.members(ROOM)] == ["bob"]


async def test_a_poll_renews_its_lease_without_awaiting(
    publisher: Publisher, announcements: Sink
) -> None:
    clock = Clock()
    presence = Presence(publisher, LEASE, LocalMembership(), clock=clock)
    presence.touch_now(ROOM, BOB, "longpoll", LEASE)  # the join is announced by a task of its own
    assert await drained(announcements) == [("presence.join", "bob")]
    clock.now += LEASE * 1.5
    presence.touch_now(ROOM, BOB, "longpoll", 0)  # renewed: no second join
    clock.now += LEASE * 0.9
    await presence.reap()
    assert await drained(announcements) == []
    clock.now += LEASE
    await presence.reap()
    assert await drained(announcements) == [("presence.leave", "bob")]


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


TRANSPORT = st.sampled_from(["websocket", "sse", "longpoll", "shortpoll"])


@given(
    connections=st.dictionaries(st.integers(0, 5), TRANSPORT, max_size=3),
    polls=st.dictionaries(TRANSPORT, st.floats(0, 10), max_size=3),
    now=st.floats(0, 10),
)
def test_a_member_is_present_exactly_when_it_has_a_live_transport(
    connections: dict[int, str], polls: dict[str, float], now: float
) -> None:
    """The reaper's quick `present` agrees with the transports a member is listed with."""
    member = LocalMember("Alice", 0.0, dict(connections), dict(polls))
    assert member.present(now) == bool(member.transports(now))


async def test_readers_of_a_public_channel_are_not_listed_to_anyone(
    presence: Presence, bus: Bus
) -> None:
    sink = Sink(1000, 1 << 20)
    async with bus.subscription("public:news", sink, None):
        await presence.connect("public:news", ALICE, "sse")
        presence.touch_now("public:news", BOB, "longpoll")
        assert await presence.members("public:news") == []
        assert presence.bounds.size == 0 and presence.bounds.untracked == 0
        assert await drained(sink) == []
