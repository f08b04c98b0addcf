"""The interface every transport implements, and what it yields besides events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from ..errors import FourcastError
from ..events import Event


@dataclass(frozen=True, slots=True)
class Options:
    """What the transports share: where the server is and how to present credentials."""

    base_url: str
    headers: dict[str, str]
    http: httpx.AsyncClient
    poll_interval: float = 1.0
    long_poll_wait: float = 25.0
    poll_limit: int = 1000
    connect_timeout: float = 10.0
    read_timeout: float = 45.0
    """An SSE stream or WebSocket silent this long is taken as dead (keepalives arrive every
    15 s, WebSocket pings every 25 s)."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """How a poller waits between polls (tests pass their own)."""


@dataclass(frozen=True, slots=True)
class Opened:
    """The connection delivers: the server accepted the subscription."""


@dataclass(frozen=True, slots=True)
class ResetSignal:
    """The server replays from its oldest retained event."""

    cursor: str | None = None
    """Where the reader now stands, when the server says (SSE `id:`, WebSocket `next`): kept,
    or on a channel with nothing retained each resume would be reset again."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Resume from here (a poll's `next`, which also remembers ephemeral events read)."""

    value: str


Item = Opened | ResetSignal | Cursor | Event


class Dropped(Exception):
    """The connection ended in a way worth retrying (network error, restart, slow reader)."""

    def __init__(self, reason: str, *, min_delay: float = 0.0, busy: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.min_delay = min_delay
        self.busy = busy
        """The server itself said "later" (a 429 with or without Retry-After, a 503 with one, or a
        WebSocket error op or close saying so): the same transport is tried again after that
        wait; `auto` does not step down for it."""


def refused(error: FourcastError, what: str = "") -> Dropped:
    """A retryable refusal from the server, as the drop the subscription retries (`what`
    prefixes its reason)."""
    # The browser client's rule (saysLater in static/js/fourcast-util.js): a 429 is always "later",
    # a 503 only with Retry-After; another 5xx may mean this transport cannot work here.
    busy = error.status == 429 or (error.status == 503 and error.retry_after is not None)
    return Dropped(f"{what}{error}", min_delay=error.retry_after or 0, busy=busy)


class Transport(Protocol):
    name: str

    def stream(self, channel: str, cursor: str | None) -> AsyncGenerator[Item, None]:
        """Connect once and yield until the connection ends: raises Dropped to be retried, a
        FourcastError when retrying cannot help."""
        ...


def channel_path(channel: str, suffix: str) -> str:
    return f"/api/channels/{channel}/{suffix}"
