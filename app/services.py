"""Everything a request needs, built once per app from the settings and owned by the lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus import Bus
from app.features.accounts import Accounts
from app.features.chat import Chat
from app.features.notifications import Notifications
from app.features.presence import Presence, Typing
from app.features.publishing import Publisher
from app.features.shared_state import SharedState
from app.identity.limits import ConnectionLimits
from app.identity.tokens import TokenService
from app.observability.metrics import Metrics
from app.settings import Settings

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
    notifications: Notifications
    checks: list[Check] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run at shutdown, after the bus has stopped (e.g. the journal's writer thread)."""

    @property
    def draining(self) -> bool:
        return self.connections.draining
