"""Everything a request needs, built once per app from the settings and owned by the lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from .bus import Bus, Sink
from .features.accounts import Accounts
from .features.chat import Chat
from .features.notifications import Notifier
from .features.presence import Presence
from .features.publishing import Publisher
from .features.shared_state import SharedState
from .features.typing import Typing
from .identity.budgets import Budgets
from .identity.guestroom import GuestRoom
from .identity.limits import ConnectionLimits
from .identity.tokens import TokenService
from .observability.metrics import Metrics
from .server.sweep import Sweep
from .settings import Settings

Check = tuple[str, Callable[[], Awaitable[None]]]
"""A named readiness check: raises when that dependency is unusable."""


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    bus: Bus
    shared: SharedState
    tokens: TokenService
    publisher: Publisher
    connections: ConnectionLimits
    metrics: Metrics
    accounts: Accounts
    chat: Chat
    presence: Presence
    typing: Typing
    notifications: Notifier
    budgets: Budgets
    guests: GuestRoom
    """Room for guest sign-ups beside the sign-outs held (max_revocations)."""
    keepalives: Sweep[Sink] = field(default_factory=lambda: Sweep(Sink.wake))
    """Parked SSE streams due a keepalive comment: one timer for all of them."""
    checks: list[Check] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run at shutdown, after the bus has stopped (e.g. the journal's writer thread)."""

    @property
    def draining(self) -> bool:
        return self.connections.draining
