"""The settings of hostile clients' budgets and memory bounds (part of `Settings`, app/settings/__init__.py)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from .units import KIB, MIB


class BudgetSettings(BaseSettings):
    """What one person or client address may spend, and what the node holds for them at most."""

    subscribe_rate: float = Field(20, gt=0)
    """WebSocket subscribes per person (an anonymous connection: its own) per second, sustained."""
    subscribe_burst: int = Field(200, ge=1)
    typing_rate: float = Field(1, gt=0)
    """Typing signals per person per second (each room's 2 s throttle applies besides)."""
    typing_burst: int = Field(10, ge=1)
    ticket_rate: float = Field(1, gt=0)
    ticket_burst: int = Field(30, ge=1)
    signup_rate: float = Field(0.5, gt=0)
    """Guest sign-ups per client address (IPv6 by /64) per second."""
    signup_burst: int = Field(30, ge=1)
    max_budget_keys: int = Field(100_000, ge=1)
    """Keys (people, client addresses) each in-process budget keeps a bucket for; past it the
    least recently used is forgotten, and starts full again if it comes back."""
    room_rate: float = Field(0.2, gt=0)
    """Room creations and joins per person per second (a join creates a missing room)."""
    room_burst: int = Field(30, ge=1)
    room_address_rate: float = Field(1, gt=0)
    """Room creations and joins per client address (IPv6 by /64) per second, whoever signed in:
    each guest has a room budget of its own, and one address may sign many guests up."""
    room_address_burst: int = Field(100, ge=1)
    read_all_rate: float = Field(1, gt=0)
    """Polls from the start of a channel (no `after`, or `after=0`) per person or address."""
    read_all_burst: int = Field(30, ge=1)
    presence_grace: float = Field(5, ge=0)
    """Seconds a person who closed their last stream stays present (at most the lease), so
    re-subscribing or reconnecting meanwhile announces nothing."""
    max_presence_entries: int = Field(100_000, ge=1)
    max_presence_per_address: int = Field(10_000, ge=1)
    """Presence entries one client address (IPv6 by /64) may hold on a node, whoever signed in
    there: else one client polling or subscribing to enough rooms leaves everyone untracked."""
    max_typing_entries: int = Field(10_000, ge=1)
    max_channels_per_socket: int = Field(500, ge=1)
    """Channels one WebSocket may follow at once (each a subscription the node's hub holds)."""
    bus_max_channels: int = Field(10_000, ge=1)
    """Channels whose log the in-process bus keeps in memory (the least recently used leave)."""
    bus_max_bytes: int = Field(256 * MIB, ge=1 * MIB)
    """Bytes of events the in-process bus keeps in its channels' logs (the least recently used
    logs leave memory past it): events are up to `max_event_bytes` each."""
    bus_channel_idle: float = Field(600, gt=0)
    """Seconds after which an unused channel's log leaves memory (reloaded from the journal)."""
    idempotency_max_bytes: int = Field(32 * MIB, ge=64 * KIB)
    ephemeral_max_bytes: int = Field(16 * MIB, ge=64 * KIB)
    """Bytes of recent ephemeral events a node keeps for its pollers (each for 10 s, 64 per
    channel); past it the oldest go early."""
    poll_max_bytes: int = Field(1 * MIB, ge=64 * KIB)
    """Bytes of events in one poll answer; a longer page is cut (`truncated`) and `next` goes on."""
