"""What decides, across every node, when a person starts and stops being present.

`Presence` (presence.py) tracks what this node sees and tells a `SharedPresence` about it: each
person as a `LocalMember`. `LocalMembership` is the one-process `SharedPresence`; the cluster's is
`RedisMembership` (presence_redis.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class LocalMember:
    name: str
    since: float
    connections: dict[int, str] = field(default_factory=dict)
    polls: dict[str, float] = field(default_factory=dict)
    """Polling transport -> monotonic expiry of its lease."""
    address: str = ""
    """The client address they arrived from, whose entries are bounded (presence_bounds.py)."""
    tracked: bool = True
    """False once this node has stopped tracking them (they left): a lease renewed through a
    kept reference (`Presence.renew`) then finds them again by name."""
    joining: bool = True
    """Their arrival is still being decided (`SharedPresence.joined` in flight): the periodic
    lease renewal leaves them out, or its write could reach Redis first and make the join look
    like a renewal, which nobody announces."""

    def transports(self, now: float) -> list[str]:
        live = set(self.connections.values())
        live.update(t for t, expiry in self.polls.items() if expiry > now)
        return sorted(live)

    def present(self, now: float) -> bool:
        """`transports(now)` is not empty; the reaper asks it of every member every second."""
        return bool(self.connections) or any(expiry > now for expiry in self.polls.values())


MemberEntry = tuple[str, str, LocalMember]
"""(channel, user, member) as this node sees it."""


class SharedPresence(Protocol):
    """Decides, across every node, when a person starts and stops being present."""

    async def joined(self, channel: str, user: str, member: LocalMember) -> bool:
        """This node now sees `user`; True when no node did before (announce the join)."""

    async def left(self, channel: str, user: str) -> bool:
        """This node no longer sees `user`; True when no node does now (announce the leave)."""

    async def refresh(self, entries: list[MemberEntry]) -> None:
        """Renew this node's leases (and current transports) for everyone it sees."""

    async def members(self, channel: str, local: dict[str, LocalMember]) -> list[dict[str, Any]]:
        """Everyone present in `channel` on any node."""

    def reap(self) -> AsyncIterator[tuple[str, str, str]]:
        """(channel, user, name) of people whose every lease lapsed (e.g. their node died),
        each as soon as it is decided."""


def member_json(user: str, member: LocalMember, transports: list[str]) -> dict[str, Any]:
    return {"user": user, "name": member.name, "transports": transports, "since": member.since}


class LocalMembership:
    """One process: what this node sees is everything."""

    async def joined(self, channel: str, user: str, member: LocalMember) -> bool:
        return True

    async def left(self, channel: str, user: str) -> bool:
        return True

    async def refresh(self, entries: list[MemberEntry]) -> None:
        return None

    async def members(self, channel: str, local: dict[str, LocalMember]) -> list[dict[str, Any]]:
        now = time.monotonic()
        result = [
            member_json(user, member, member.transports(now)) for user, member in local.items()
        ]
        return sorted((m for m in result if m["transports"]), key=lambda m: m["since"])

    async def reap(self) -> AsyncIterator[tuple[str, str, str]]:
        return
        yield
