"""Revoking a person's sessions: sign-out, or a service revoking someone.

Revocation is a per-person "not before" time: every credential of that person issued at or before
it is refused from the next request on, and their open WebSockets and SSE streams are closed. An
entry is kept for `ttl` seconds (the longest a credential lives), and at most `max_people` are
kept: past it a new person's sign-out is refused (503) rather than any revocation forgotten, which
would let a signed-out token work again.
Checks are local dictionary reads; with Redis (revocation_redis.py), revocations are stored there
(for nodes that start later) and announced over pub/sub, so every node applies them within moments.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import Unavailable

log = logging.getLogger(__name__)

Watcher = Callable[[], None]
MAX_PEOPLE = 500_000
"""The default of `max_revocations`: about 100 MB of entries at most."""


class RevocationStore(Protocol):
    """Where one node keeps its revocations across restarts (app/store/tickets.py)."""

    async def save(self, user: str, at: float, expired_before: float) -> None:
        """Keep `user`'s revocation at `at`; those made before `expired_before` may go."""

    async def load(self, since: float) -> list[tuple[str, float]]:
        """Revocations made after `since` (older ones may be deleted)."""


class Revocations:
    """In this process: one node (kept in `store` across restarts), or the local copy of the
    cluster's revocations."""

    def __init__(
        self, ttl: float, store: RevocationStore | None = None, max_people: int = MAX_PEOPLE
    ) -> None:
        self._ttl = ttl
        self._store = store
        self._max_people = max_people
        self.refused = 0
        """Sign-outs refused at `max_people` (a metric)."""
        self.not_before: OrderedDict[str, float] = OrderedDict()
        """Each revoked person's revocation time. Changed, never replaced: a hot path may keep
        it and ask it for emptiness before calling `is_revoked` (app/web/poll.py)."""
        self._watchers: dict[str, set[Watcher]] = {}
        self._listeners: list[Callable[[str], None]] = []

    def __len__(self) -> int:
        return len(self.not_before)

    def gauge(self, registry: Any) -> None:
        """`fourcast_revoked_people`: revocations held (each for `ttl` seconds)."""
        from prometheus_client import Gauge

        held = Gauge(
            "fourcast_revoked_people",
            "People whose sessions are revoked (max_revocations)",
            registry=registry,
        )
        held.set_function(lambda: len(self.not_before))

    def is_revoked(self, user: str, issued_at: float) -> bool:
        revoked_at = self.not_before.get(user)
        return revoked_at is not None and issued_at <= revoked_at

    def make_room(self, user: str) -> None:
        """Raises Unavailable (503) when revoking `user` would hold more than `max_people`
        revocations. A person already held is revoked again in place; one from another node is
        always applied (it was admitted there), so nothing revoked is ever forgotten early."""
        held = self.not_before
        if len(held) < self._max_people or user in held:
            return
        now = time.time()
        self.forget_expired(now)
        if len(held) < self._max_people:
            return
        self.refused += 1
        log.warning("sign-out refused: %d revocations held (max_revocations)", len(held))
        room_at = next(iter(held.values())) + self._ttl  # when the oldest may go
        raise Unavailable(
            "too many sessions signed out lately: try again later",
            retry_after=max(1, math.ceil(room_at - now)),
        )

    async def revoke(self, user: str) -> float:
        """Revoke every credential of `user` issued until now; returns the revocation time."""
        at, _ = await self.revoke_once(user)
        return at

    async def revoke_once(self, user: str) -> tuple[float, bool]:
        """`revoke`, and whether `user` was held no revocation before (of concurrent sign-outs,
        exactly one is first: the guest room gives a guest back once)."""
        self.make_room(user)
        at = time.time()
        if self._store is not None:
            try:
                await self._store.save(user, at, at - self._ttl)
            except Exception as exc:
                raise unavailable(exc) from None
        first = user not in self.not_before  # and applied in the same step
        self.apply(user, at)
        return at, first

    def apply(self, user: str, at: float) -> None:
        """Record a revocation (ours or another node's) and close the person's connections."""
        now = time.time()
        if at < now - self._ttl:
            return
        before = self.not_before.get(user, 0.0)
        self.not_before[user] = max(at, before)
        self.not_before.move_to_end(user)
        self.forget_expired(now)
        for watcher in list(self._watchers.get(user, ())):
            watcher()
        if at > before:  # news: not one heard again (a node reloading after a reconnect)
            for listener in list(self._listeners):
                listener(user)

    def forget_expired(self, now: float) -> None:
        """Revocations older than `ttl`: no credential they refuse is still valid."""
        held = self.not_before
        while held:
            oldest_user, oldest_at = next(iter(held.items()))
            if oldest_at >= now - self._ttl:
                break
            del held[oldest_user]

    def watch(self, user: str, watcher: Watcher) -> Callable[[], None]:
        """Call `watcher` when `user` is revoked (until the returned function is called)."""
        self._watchers.setdefault(user, set()).add(watcher)

        def unwatch() -> None:
            watchers = self._watchers.get(user)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[user]

        return unwatch

    def on_revoke(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call `listener` with each person newly revoked (whoever watches them or not): the
        poll core ends their waiting long polls then (until the returned function is called)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def start(self) -> None:
        if self._store is not None:
            for user, at in await self._store.load(time.time() - self._ttl):
                self.apply(user, at)

    async def stop(self) -> None:
        pass


def unavailable(exc: Exception) -> Unavailable:
    """The store's error is logged, never sent: it may quote SQL and its parameters."""
    log.warning("saving a revocation failed: %s", exc)
    return Unavailable("revocation store unavailable", retry_after=2)
