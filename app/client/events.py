"""What a subscription yields, and the signals around it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a channel. `id` is its cursor (an opaque string), `None` when ephemeral."""

    id: str | None
    channel: str
    type: str
    data: Any
    ts: float | None = None
    sender: str | None = None
    """The event's `from`: `user:<id>` or `service:<name>`."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Event:
        raw_id = obj.get("id")
        return cls(
            id=None if raw_id is None else str(raw_id),
            channel=str(obj.get("channel", "")),
            type=str(obj.get("type", "")),
            data=obj.get("data"),
            ts=obj.get("ts"),
            sender=obj.get("from"),
            raw={k: v for k, v in obj.items() if k != "op"},
        )

    def to_dict(self) -> dict[str, Any]:
        """The event as the server sent it."""
        return dict(self.raw)


@dataclass(frozen=True, slots=True)
class Reset:
    """The server could not resume from the cursor (older than its history, or unknown): it
    resumes from its oldest retained event. Events between may be lost; never silently."""

    channel: str
    transport: str


State = Literal["connecting", "live", "retrying"]


@dataclass(frozen=True, slots=True)
class Status:
    """A change in a subscription's connection, for logs and progress displays."""

    state: State
    transport: str
    reason: str = ""
    delay: float | None = None
    """Seconds until the next attempt, when retrying."""
