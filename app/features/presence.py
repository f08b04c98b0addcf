"""Who is in a channel now, over any transport.

A streaming connection (WebSocket, SSE) is present from connect to close. A polling client has no
connection to watch, so each poll renews a lease; it stays present while it keeps polling and
leaves when the lease lapses. A person is one member however many tabs, transports and nodes they
use: `presence.join` when their first connection or lease appears, `presence.leave` after the last.
Closing the last stream leaves a lease of `grace` seconds behind it, so a client that reconnects or
re-subscribes meanwhile (a reload, or a loop of subscribe/unsubscribe) announces nothing at all.

This module tracks what this node sees; a `SharedPresence` (presence_shared.py) decides what is new
or gone across nodes (`LocalMembership` for one process, `RedisMembership` for a cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import FourcastError, Unavailable
from ..identity.principal import Principal
from .presence_bounds import EntryBounds
from .presence_polls import PollPresence
from .presence_shared import LocalMember, MemberEntry, SharedPresence
from .publishing import SERVER, Publisher

log = logging.getLogger(__name__)

ANNOUNCED_NAMESPACES = ("room",)
"""Namespaces whose channels have presence: members listed, presence.join / presence.leave
announced. Elsewhere (a public channel, a person's own) who reads is nobody else's business."""


@dataclass(frozen=True, slots=True)
class Lease:
    channel: str
    user: str
    conn: int


class Presence(PollPresence):
    def __init__(
        self,
        publisher: Publisher,
        lease: float,
        membership: SharedPresence,
        *,
        grace: float = 0.0,
        max_entries: int = 100_000,
        max_per_address: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock`: where lease times come from (tests pass their own, to move time by hand)."""
        self._clock = clock
        self._publisher = publisher
        self._lease = lease
        self._grace = min(grace, lease)
        self._membership = membership
        self._channels: dict[str, dict[str, LocalMember]] = {}
        self.bounds = EntryBounds(max_entries, max_per_address)
        """(channel, person) entries held, in all and per client address (metrics)."""
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._interval = max(0.05, min(1.0, lease / 4))
        """Seconds between housekeeping ticks."""
        self._last_renewal = float("-inf")
        self._reap_shared_from = float("-inf")
        """When other nodes' lapsed leases may be reaped again, after the shared state was away."""
        self._arrivals: set[asyncio.Task[None]] = set()
        self._renewal: asyncio.Future[None] | None = None
        self._leaving: dict[tuple[str, str], asyncio.Future[None]] = {}
        """(channel, person) -> their leave, while it is on its way to the shared state."""

    async def start(self) -> None:
        self._task = asyncio.create_task(self._housekeeping(), name="presence")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def connect(
        self, channel: str, principal: Principal, transport: str, *, ip: str = ""
    ) -> Lease:
        """`ip`: the client's address, whose entries are bounded (tests: one address)."""
        member, new = self._member(channel, principal, ip)
        lease = Lease(channel, principal.id, next(self._ids))
        if member is None:
            return lease  # over the bound: not tracked, and its disconnect finds nothing
        member.connections[lease.conn] = transport
        try:
            # Shielded: a join decided in Redis is announced even if its client leaves now.
            await asyncio.shield(self._arrival(channel, principal.id, member, new))
        except BaseException:
            # Interrupted (the client left while the join was on its way to Redis): drop the
            # connection, and the reaper announces the leave if nothing else keeps them here.
            member.connections.pop(lease.conn, None)
            raise
        return lease

    async def disconnect(self, lease: Lease) -> None:
        member = self._channels.get(lease.channel, {}).get(lease.user)
        if member is None:
            return
        transport = member.connections.pop(lease.conn, None)
        if transport is None:
            return
        now = self._clock()
        if self._grace > 0 and not member.present(now):
            # Linger for the grace: the reaper announces the leave if they do not come back.
            member.polls[transport] = max(member.polls.get(transport, now), now + self._grace)
            return
        await self._leave_if_gone(lease.channel, lease.user, member, now)

    def _arrival(
        self, channel: str, user: str, member: LocalMember, new: bool
    ) -> asyncio.Future[None]:
        task = asyncio.ensure_future(self._arrived(channel, user, member, new))
        self._arrivals.add(task)
        task.add_done_callback(self._arrivals.discard)
        return task

    async def members(self, channel: str) -> list[dict[str, Any]]:
        return await self._membership.members(channel, self._channels.get(channel, {}))

    def _member(
        self, channel: str, principal: Principal, ip: str
    ) -> tuple[LocalMember | None, bool]:
        if channel.partition(":")[0] not in ANNOUNCED_NAMESPACES:
            return None, False  # not tracked: no presence here
        members = self._channels.get(channel)
        member = None if members is None else members.get(principal.id)
        if member is not None:
            # Still here, or back before the reaper noticed a lapsed lease: no leave, no join.
            return member, False
        address = self.bounds.admit(ip)
        if address is None:
            return None, False
        member = LocalMember(principal.name, round(time.time() * 1000, 3), address=address)
        self._channels.setdefault(channel, {})[principal.id] = member
        return member, True

    async def _arrived(self, channel: str, user: str, member: LocalMember, new: bool) -> None:
        try:
            if new:
                try:
                    leaving = self._leaving.get((channel, user))
                    if leaving is not None:
                        # Their leave goes first: sent after it, this join would find the
                        # lease the leave is about to delete, and read as a renewal.
                        await asyncio.wait([leaving])
                    first = await self._membership.joined(channel, user, member)
                finally:
                    member.joining = False
                if first:
                    await self._announce(channel, "presence.join", user, member.name)
            elif not member.joining:  # else the join in flight writes, the renewal follows
                await self._membership.refresh([(channel, user, member)])
        except Exception as exc:  # presence is best effort: never fail the connection for it
            log.warning("presence update for %s failed: %s", channel, exc)

    async def _leave_if_gone(
        self, channel: str, user: str, member: LocalMember, now: float
    ) -> None:
        if member.present(now) or member.joining:
            return  # (joining: the reaper comes back once the join is decided)
        members = self._channels.get(channel, {})
        if members.get(user) is not member:
            return
        del members[user]
        member.tracked = False
        self.bounds.release(member.address)
        if not members:
            self._channels.pop(channel, None)
        key = (channel, user)
        leaving = self._leaving[key] = asyncio.get_running_loop().create_future()
        try:
            renewal = self._renewal
            if renewal is not None:
                # A renewal on its way may carry them still: it lands first, or it would write
                # their lease back after the leave (present a lease more, then a second leave).
                await asyncio.wait([renewal])
            if await self._membership.left(channel, user):
                await self._announce(channel, "presence.leave", user, member.name)
        except Exception as exc:
            log.warning("presence leave for %s failed: %s", channel, exc)
        finally:
            if self._leaving.get(key) is leaving:
                del self._leaving[key]
            leaving.set_result(None)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except Unavailable as exc:
                # Expected while Redis is away (every tick of the outage): one line, no traceback.
                log.warning("presence housekeeping skipped: %s", exc)
            except Exception:
                log.exception("presence housekeeping failed; continuing")

    async def tick(self) -> None:
        """Reap, and renew this node's leases every third of a lease. While the shared state
        is away, and for a lease after this node's first renewal once it is back, other nodes'
        lapsed leases are not reaped: every live node's lapsed meanwhile, and each renews its
        own in that time (else everyone present is announced gone, as a dead node's people)."""
        now = self._clock()
        try:
            await self.reap(now, shared=now >= self._reap_shared_from)
            if now - self._last_renewal >= max(self._interval, self._lease / 3):
                self._last_renewal = now
                await self.renew_leases()
                if self._reap_shared_from == float("inf"):  # back: the others renew now
                    self._reap_shared_from = self._clock() + self._lease
        except Unavailable:
            self._reap_shared_from = float("inf")
            self._last_renewal = float("-inf")  # renewed first thing once it is back
            raise

    def _entries(self) -> list[MemberEntry]:
        return [
            (channel, user, member)
            for channel, members in self._channels.items()
            for user, member in members.items()
        ]

    async def renew_leases(self) -> None:
        """Renew this node's leases for everyone it sees, except arrivals still being decided
        (their join writes their lease itself)."""
        entries = [e for e in self._entries() if not e[2].joining]
        renewal = self._renewal = asyncio.ensure_future(self._membership.refresh(entries))
        try:
            await renewal
        finally:
            if self._renewal is renewal:
                self._renewal = None

    async def reap(self, now: float | None = None, *, shared: bool = True) -> None:
        """Announce the leaves of this node's people gone, and (`shared`) of people whose every
        lease lapsed on every node (a dead node's)."""
        now = self._clock() if now is None else now
        for channel, user, member in self._entries():
            if not member.present(now):
                await self._leave_if_gone(channel, user, member, now)
        if not shared:
            return
        # Each leave announced as soon as it is decided: a join decided after it goes out after.
        async for channel, user, name in self._membership.reap():
            await self._announce(channel, "presence.leave", user, name)

    async def _announce(self, channel: str, event_type: str, user: str, name: str) -> None:
        if channel.partition(":")[0] not in ANNOUNCED_NAMESPACES:
            return
        try:
            await self._publisher.publish_trusted(
                SERVER, channel, event_type, {"user": user, "name": name}, ephemeral=True
            )
        except FourcastError as exc:  # e.g. shutting down: presence is best effort
            log.info("could not announce %s on %s: %s", event_type, channel, exc.message)
