"""Who is typing where: a per-person budget, a per-room throttle, and bounded, expiring state."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

from ..identity.limits import TokenBuckets
from ..identity.principal import Principal
from .publishing import Publisher, Suppressed


class TypingState(Protocol):
    """Who is typing where, and the per-person throttle: in-process or shared through Redis."""

    async def signal(self, channel: str, user: str, name: str) -> bool:
        """Record a typing signal; True when it should be forwarded (not throttled)."""

    async def typing(self, channel: str) -> list[dict[str, str]]:
        """People whose last signal is under `expiry` seconds old."""


class Typing:
    """At most one `typing` event forwarded per person per `throttle` seconds in a room; each
    signal, forwarded or not, keeps them "typing" for `expiry` seconds, so pollers see a steady
    state. A per-person `budget` (when given) bounds signals across rooms, made-up ones too."""

    def __init__(
        self, publisher: Publisher, state: TypingState, budget: TokenBuckets | None = None
    ) -> None:
        self._state = state
        self._budget = budget
        publisher.add_rule("room", "typing", self.rule, always_ephemeral=True)

    async def rule(self, principal: Principal, channel: str, data: Any) -> Any:
        if not principal.is_user:
            return data
        if self._budget is not None:
            self._budget.take_now(principal.id)  # before any state is kept for the signal
        if not await self._state.signal(channel, principal.id, principal.name):
            raise Suppressed
        return {"user": principal.id, "name": principal.name}

    async def typing(self, channel: str) -> list[dict[str, str]]:
        return await self._state.typing(channel)


class LocalTypingState:
    """In-process state: at most `max_entries` (room, person) entries, the stale ones swept
    oldest first on every signal; a signal that finds it full is dropped (suppressed)."""

    def __init__(self, throttle: float, expiry: float, max_entries: int = 10_000) -> None:
        self._throttle = throttle
        self._expiry = expiry
        self._max_entries = max_entries
        self._state: dict[str, dict[str, tuple[str, float, float]]] = {}
        self._order: OrderedDict[tuple[str, str], None] = OrderedDict()
        """Every entry, least recently signalled first."""
        self.dropped = 0
        """Signals dropped because the state was full (a metric)."""

    @property
    def size(self) -> int:
        return len(self._order)

    async def signal(self, channel: str, user: str, name: str) -> bool:
        now = time.monotonic()
        self._sweep(now)
        key = (channel, user)
        if key not in self._order and len(self._order) >= self._max_entries:
            self.dropped += 1
            return False
        typists = self._state.setdefault(channel, {})
        self._order[key] = None
        self._order.move_to_end(key)
        _, forwarded, _ = typists.get(user, ("", float("-inf"), 0.0))
        if now - forwarded < self._throttle:
            typists[user] = (name, forwarded, now + self._expiry)
            return False
        typists[user] = (name, now, now + self._expiry)
        return True

    async def typing(self, channel: str) -> list[dict[str, str]]:
        now = time.monotonic()
        self._sweep(now)
        typists = self._state.get(channel, {})
        return [{"user": u, "name": n} for u, (n, _, until) in typists.items() if until > now]

    def _sweep(self, now: float) -> None:
        """Forget entries past both their expiry and their throttle, oldest first."""
        while self._order:
            channel, user = key = next(iter(self._order))
            typists = self._state[channel]
            _, sent, until = typists[user]
            if until > now or now - sent < self._throttle:
                return
            del self._order[key]
            del typists[user]
            if not typists:
                del self._state[channel]
