"""How a poller is present. A poll with no connection the server watches renews a lease (its
start for the time it may wait and a lease more, its end for a lease from then). Polls on a
keep-alive connection of fourcast's protocol are held by it instead: the connection counts as
one of the person's, as a stream does, until it closes, and then leaves a lease behind, so the
person leaves as after a last poll. Most polls then touch no per-person record at all.

`PollPresence` is the poll-facing part of `Presence` (presence.py), which it is mixed into.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ..identity.principal import Principal
from .presence_shared import LocalMember


@dataclass(slots=True)
class Hold:
    """A keep-alive connection's polls, counted as a connection of their person's (as a stream
    is) from its first poll until it closes, or until a poll on it asks as someone else, for
    another channel or by another transport. `release` leaves a lease behind, as a last poll
    does: a poll on a held connection touches no per-person record."""

    presence: PollPresence
    channel: str
    principal: Principal
    transport: str
    member: LocalMember
    conn: int

    def release(self) -> None:
        self.presence.release(self)


class Holder(Protocol):
    """Where a keep-alive connection keeps its `Hold` (the server's protocol object)."""

    presence_hold: Hold | None


def let_go(holder: Holder) -> None:
    """The connection's polls no longer hold anyone: it closed, moved on to something else, or
    a poll on it failed or asked for nobody. A lease is left behind."""
    held = holder.presence_hold
    if held is not None:
        holder.presence_hold = None
        held.release()


class PollPresence:
    """Mixed into `Presence`, which provides these (declared here for the type checker)."""

    _clock: Callable[[], float]
    _lease: float
    _ids: itertools.count[int]
    _member: Callable[[str, Principal, str], tuple[LocalMember | None, bool]]
    _arrival: Callable[[str, str, LocalMember, bool], asyncio.Future[None]]
    _arrived: Callable[[str, str, LocalMember, bool], Awaitable[None]]

    async def touch(
        self, channel: str, principal: Principal, transport: str, hold: float = 0, *, ip: str = ""
    ) -> None:
        """A poll: present for a lease from now (plus the time a long poll is held). `ip`: the
        client's address, whose entries are bounded (tests: one address)."""
        member, new = self._member(channel, principal, ip)
        if member is None:
            return
        renewed = transport not in member.polls
        member.polls[transport] = self._clock() + hold + self._lease
        if new or renewed:
            await self._arrived(channel, principal.id, member, new)

    def touch_now(
        self, channel: str, principal: Principal, transport: str, hold: float = 0, *, ip: str = ""
    ) -> tuple[LocalMember | None, asyncio.Future[None] | None]:
        """`touch` without awaiting (a poll renews its lease from a callback): the lease is
        renewed at once; announcing an arrival, rare, runs as a task of its own. Returns the
        member (None over the bound), for the poll's end to `renew`, and that task."""
        member, new = self._member(channel, principal, ip)
        if member is None:
            return None, None
        renewed = transport not in member.polls
        member.polls[transport] = self._clock() + hold + self._lease
        if not (new or renewed):
            return member, None
        return member, self._arrival(channel, principal.id, member, new)

    def keep(
        self,
        holder: Holder,
        channel: str,
        person: Principal | None,
        transport: str,
        *,
        ip: str = "",
    ) -> asyncio.Future[None] | None:
        """A poll on a keep-alive connection. Its `Hold` stands while the polls on it ask as the
        same person (the same principal object), for the same channel, by the same transport:
        nothing is written. Any other poll lets it go (a lease is left) and, when it is a
        person's (`person` not None), holds anew. Returns the arrival's task, if any."""
        held = holder.presence_hold
        if held is not None:
            if held.principal is person and held.transport == transport and held.channel == channel:
                return None  # the same polls again: the common case, nothing written
            let_go(holder)
        if person is None:
            return None
        member, new = self._member(channel, person, ip)
        if member is None:
            return None
        fresh = transport not in member.polls and transport not in member.connections.values()
        held = Hold(self, channel, person, transport, member, next(self._ids))
        member.connections[held.conn] = transport
        holder.presence_hold = held
        if not (new or fresh):
            return None
        return self._arrival(channel, person.id, member, new)

    def release(self, held: Hold) -> None:
        """A held connection closed, or moved on: a lease from now, as after a last poll. (A
        member with a held connection is present, so the reaper never drops them meanwhile.)"""
        member = held.member
        transport = member.connections.pop(held.conn, None)
        if transport is None:
            return
        expiry = self._clock() + self._lease
        if member.polls.get(transport, 0.0) < expiry:
            member.polls[transport] = expiry

    def renew(
        self,
        member: LocalMember | None,
        channel: str,
        principal: Principal,
        transport: str,
        *,
        ip: str = "",
    ) -> None:
        """A poll's end (answered, or its client gone): its lease runs from now. The member its
        start renewed is written to directly (no lookup, on every long poll) while this node
        still tracks them; else as `touch_now`."""
        if member is not None and member.tracked:
            member.polls[transport] = self._clock() + self._lease
        else:
            self.touch_now(channel, principal, transport, ip=ip)
