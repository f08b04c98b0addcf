"""Who is in a channel now, over any transport, and who is typing.

A streaming connection (WebSocket, SSE) is present from connect to close. A polling client has no
connection to watch, so each poll renews a lease; it stays present while it keeps polling and
leaves when the lease lapses. A person is one member however many tabs and transports they use:
`presence.join` when their first connection or lease appears, `presence.leave` after the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from app.errors import FourcastError
from app.features.publishing import SERVER, Publisher, Suppressed
from app.identity.principal import Principal

log = logging.getLogger(__name__)

ANNOUNCED_NAMESPACES = ("room",)
"""Namespaces whose channels get presence.join / presence.leave events."""


@dataclass(frozen=True, slots=True)
class Lease:
    channel: str
    user: str
    conn: int


@dataclass(slots=True)
class _Member:
    name: str
    since: float
    connections: dict[int, str] = field(default_factory=dict)
    polls: dict[str, float] = field(default_factory=dict)
    """Polling transport -> monotonic expiry of its lease."""

    def transports(self, now: float) -> list[str]:
        live = set(self.connections.values())
        live.update(t for t, expiry in self.polls.items() if expiry > now)
        return sorted(live)


class Presence:
    def __init__(self, publisher: Publisher, lease: float) -> None:
        self._publisher = publisher
        self._lease = lease
        self._channels: dict[str, dict[str, _Member]] = {}
        self._ids = itertools.count(1)
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_loop(), name="presence-reaper")

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper

    async def connect(self, channel: str, principal: Principal, transport: str) -> Lease:
        member, joined = self._member(channel, principal)
        lease = Lease(channel, principal.id, next(self._ids))
        member.connections[lease.conn] = transport
        if joined:
            await self._announce(channel, "presence.join", principal.id, member.name)
        return lease

    async def disconnect(self, lease: Lease) -> None:
        members = self._channels.get(lease.channel, {})
        member = members.get(lease.user)
        if member is None or member.connections.pop(lease.conn, None) is None:
            return
        await self._leave_if_gone(lease.channel, lease.user, member, time.monotonic())

    async def touch(
        self, channel: str, principal: Principal, transport: str, hold: float = 0
    ) -> None:
        """A poll: present for a lease from now (plus the time a long poll is held)."""
        member, joined = self._member(channel, principal)
        member.polls[transport] = time.monotonic() + hold + self._lease
        if joined:
            await self._announce(channel, "presence.join", principal.id, member.name)

    async def members(self, channel: str) -> list[dict[str, Any]]:
        now = time.monotonic()
        result = []
        for user, member in self._channels.get(channel, {}).items():
            transports = member.transports(now)
            if transports:
                result.append(
                    {
                        "user": user,
                        "name": member.name,
                        "transports": transports,
                        "since": member.since,
                    }
                )
        return sorted(result, key=lambda m: m["since"])

    def _member(self, channel: str, principal: Principal) -> tuple[_Member, bool]:
        members = self._channels.setdefault(channel, {})
        member = members.get(principal.id)
        if member is not None and member.transports(time.monotonic()):
            return member, False
        # New, or back after every connection and lease had gone.
        member = _Member(principal.name, round(time.time() * 1000, 3))
        members[principal.id] = member
        return member, True

    async def _leave_if_gone(self, channel: str, user: str, member: _Member, now: float) -> None:
        if member.transports(now):
            return
        members = self._channels.get(channel, {})
        if members.get(user) is member:
            del members[user]
            if not members:
                self._channels.pop(channel, None)
        await self._announce(channel, "presence.leave", user, member.name)

    async def _reap_loop(self) -> None:
        interval = max(0.05, min(1.0, self._lease / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except Exception:
                log.exception("presence reaper failed; continuing")

    async def reap(self) -> None:
        now = time.monotonic()
        lapsed = [
            (channel, user, member)
            for channel, members in self._channels.items()
            for user, member in members.items()
            if not member.transports(now)
        ]
        for channel, user, member in lapsed:
            await self._leave_if_gone(channel, user, member, now)

    async def _announce(self, channel: str, event_type: str, user: str, name: str) -> None:
        if channel.partition(":")[0] not in ANNOUNCED_NAMESPACES:
            return
        try:
            await self._publisher.publish_trusted(
                SERVER, channel, event_type, {"user": user, "name": name}, ephemeral=True
            )
        except FourcastError as exc:  # e.g. shutting down: presence is best effort
            log.info("could not announce %s on %s: %s", event_type, channel, exc.message)


class Typing:
    """At most one `typing` event forwarded per person per `throttle` seconds; each signal,
    forwarded or not, keeps them "typing" for `expiry` seconds, so pollers see a steady state."""

    def __init__(self, publisher: Publisher, throttle: float, expiry: float) -> None:
        self._throttle = throttle
        self._expiry = expiry
        self._state: dict[str, dict[str, tuple[str, float, float]]] = {}
        publisher.add_rule("room", "typing", self.rule, always_ephemeral=True)

    def rule(self, principal: Principal, channel: str, data: Any) -> Any:
        if not principal.is_user:
            return data
        now = time.monotonic()
        typists = self._state.setdefault(channel, {})
        _, forwarded, _ = typists.get(principal.id, ("", float("-inf"), 0.0))
        if now - forwarded < self._throttle:
            typists[principal.id] = (principal.name, forwarded, now + self._expiry)
            raise Suppressed
        typists[principal.id] = (principal.name, now, now + self._expiry)
        return {"user": principal.id, "name": principal.name}

    async def typing(self, channel: str) -> list[dict[str, str]]:
        typists = self._state.get(channel)
        if not typists:
            return []
        now = time.monotonic()
        stale = [
            u
            for u, (_, sent, until) in typists.items()
            if until <= now and now - sent >= self._throttle
        ]
        for user in stale:
            del typists[user]
        if not typists:
            del self._state[channel]
        return [{"user": u, "name": n} for u, (n, _, until) in typists.items() if until > now]
