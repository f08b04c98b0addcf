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

from ..errors import FourcastError
from ..identity.principal import Principal
from .presence_bounds import EntryBounds
from .presence_polls import PollPresence
from .presence_shared import LocalMember, SharedPresence
from .presence_upkeep import PresenceUpkeep
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


class Presence(PollPresence, PresenceUpkeep):
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

    async def _announce(self, channel: str, event_type: str, user: str, name: str) -> None:
        if channel.partition(":")[0] not in ANNOUNCED_NAMESPACES:
            return
        try:
            await self._publisher.publish_trusted(
                SERVER, channel, event_type, {"user": user, "name": name}, ephemeral=True
            )
        except FourcastError as exc:  # e.g. shutting down: presence is best effort
            log.info("could not announce %s on %s: %s", event_type, channel, exc.message)
