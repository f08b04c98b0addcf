"""A keep-alive connection's polls held as one presence (app/features/presence_polls.py), on
lease time moved by hand."""

from __future__ import annotations

import asyncio

import pytest

from app.bus import Sink
from app.features.presence import Presence
from app.features.presence_polls import Hold
from app.features.presence_shared import LocalMembership
from app.features.publishing import Publisher
from tests.unit.test_presence import (
    ALICE,
    BOB,
    LEASE,
    ROOM,
    Clock,
    announcements,
    drained,
    publisher,
)

__all__ = ["announcements", "publisher"]  # the fixtures, used by name

OTHER_ROOM = "room:other"


class Connection:
    """What the server's protocol object offers: a place for the hold."""

    presence_hold: Hold | None = None


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.now += 3600  # `members` reads the real clock: leases ahead of it stay live
    return clock


@pytest.fixture
def presence(publisher: Publisher, clock: Clock) -> Presence:
    return Presence(publisher, LEASE, LocalMembership(), clock=clock)


async def bob_held(presence: Presence) -> tuple[Connection, Hold]:
    """Bob's first long poll on a connection: held, his arrival announced."""
    connection = Connection()
    arriving = presence.keep(connection, ROOM, BOB, "longpoll")
    assert arriving is not None
    await arriving
    assert connection.presence_hold is not None
    return connection, connection.presence_hold


async def test_a_held_connection_keeps_its_person_present_past_any_lease(
    presence: Presence, clock: Clock, announcements: Sink
) -> None:
    connection, held = await bob_held(presence)
    assert await drained(announcements) == [("presence.join", "bob")]
    member = held.member
    for _ in range(10):  # many polls, many leases apart: nothing written, nobody leaves
        clock.now += LEASE * 2
        assert presence.keep(connection, ROOM, BOB, "longpoll") is None
        assert connection.presence_hold is held
        await presence.reap()
    assert member.polls == {}
    assert await drained(announcements) == []
    members = await presence.members(ROOM)
    assert [(m["user"], m["transports"]) for m in members] == [("bob", ["longpoll"])]


async def test_a_closed_connection_leaves_a_lease_as_a_last_poll_does(
    presence: Presence, clock: Clock, announcements: Sink
) -> None:
    _, held = await bob_held(presence)
    clock.now += LEASE * 5
    held.release()  # what the protocol does when its connection is lost
    assert held.member.connections == {}
    assert held.member.polls == {"longpoll": clock.now + LEASE}
    held.release()  # a second release changes nothing
    assert held.member.polls == {"longpoll": clock.now + LEASE}
    clock.now += LEASE * 0.9
    await presence.reap()
    assert await drained(announcements) == [("presence.join", "bob")]
    clock.now += LEASE * 0.2
    await presence.reap()
    assert await drained(announcements) == [("presence.leave", "bob")]


@pytest.mark.parametrize(
    ("principal", "channel", "transport"),
    [(ALICE, ROOM, "longpoll"), (BOB, OTHER_ROOM, "longpoll"), (BOB, ROOM, "shortpoll")],
    ids=["another-person", "another-channel", "another-transport"],
)
async def test_a_poll_asking_otherwise_moves_the_hold_and_leaves_a_lease_behind(
    presence: Presence, clock: Clock, principal: object, channel: str, transport: str
) -> None:
    connection = Connection()
    presence.keep(connection, ROOM, BOB, "longpoll")
    first = connection.presence_hold
    assert first is not None
    clock.now += LEASE * 3
    presence.keep(connection, channel, principal, transport)  # type: ignore[arg-type]
    second = connection.presence_hold
    assert second is not None and second is not first
    assert (second.channel, second.principal, second.transport) == (channel, principal, transport)
    assert first.conn not in first.member.connections
    assert first.member.polls == {"longpoll": clock.now + LEASE}
    assert second.member.connections[second.conn] == transport
    await presence.reap()  # both present: the old hold's lease, and the new hold
    users = {m["user"] for ch in {ROOM, channel} for m in await presence.members(ch)}
    assert users == {"bob", principal.id}  # type: ignore[attr-defined]
    await asyncio.gather(*presence._arrivals)


async def test_the_same_person_verified_again_is_held_again_without_a_second_join(
    presence: Presence, announcements: Sink
) -> None:
    connection, first = await bob_held(presence)
    again = type(BOB)(BOB.kind, BOB.id, BOB.name)  # an equal principal, not the same object
    assert presence.keep(connection, ROOM, again, "longpoll") is None
    assert connection.presence_hold is not first
    assert await drained(announcements) == [("presence.join", "bob")]
