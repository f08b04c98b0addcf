"""The reaper and the lease renewal of `Presence` (presence.py), into which `PresenceUpkeep` is
mixed: who of this node's people is gone (a lapsed lease, no connection), who of every node's
(a dead node's), and this node's leases written again every third of a lease."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..errors import Unavailable
from .presence_bounds import EntryBounds
from .presence_shared import LocalMember, MemberEntry, SharedPresence

log = logging.getLogger(__name__)


class PresenceUpkeep:
    """Mixed into `Presence`, which provides these (declared here for the type checker)."""

    _clock: Callable[[], float]
    _lease: float
    _interval: float
    _last_renewal: float
    _reap_shared_from: float
    _membership: SharedPresence
    _channels: dict[str, dict[str, LocalMember]]
    _renewal: asyncio.Future[None] | None
    _leaving: dict[tuple[str, str], asyncio.Future[None]]
    bounds: EntryBounds

    _announce: Callable[[str, str, str, str], Awaitable[None]]

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
