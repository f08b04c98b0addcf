"""Everything a request needs, built once per app from the settings and owned by the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.bus import Bus
from app.features.publishing import Publisher
from app.identity.limits import ConnectionLimits
from app.identity.tokens import TokenService
from app.observability.metrics import Metrics
from app.settings import Settings


@dataclass(slots=True)
class Services:
    settings: Settings
    bus: Bus
    tokens: TokenService
    publisher: Publisher
    connections: ConnectionLimits
    metrics: Metrics
    checks: list[Any] = field(default_factory=list)
    """Async callables raising when a dependency (bus, database) is unusable: for /readyz."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Feature services (chat, presence, notifications), by name."""

    @property
    def draining(self) -> bool:
        return self.connections.draining
