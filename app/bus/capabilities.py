"""What a backend may offer beyond `Backend` so that polls are answered without awaiting.

A backend that can read without awaiting (`SyncReads`, the in-memory one) lets a poll be answered
from a callback. One that must listen to deliver but holds the newest events of what it listens to
(`HeldReads`, Redis) does the same for a channel kept listened for its pollers (app/bus/holds.py)
and a cursor near its head. Otherwise reads are awaited (app/bus/polls.py).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .backend import ReadResult


@runtime_checkable
class SyncReads(Protocol):
    """The optional capability of a backend that holds its channels' logs in memory."""

    def read_now(self, channel: str, after: int | None, limit: int) -> ReadResult | None:
        """`read` without awaiting; None when the channel is not in memory yet (await `read`).

        A backend offering this must also deliver with no `listen`/`unlisten` calls, so that a
        poll can be parked from a callback."""

    def head_now(self, channel: str) -> int | None:
        """The channel's newest cursor when known without awaiting, else None."""


@runtime_checkable
class HeldReads(Protocol):
    """The optional capability of a backend that delivers only what it listens to, but holds
    the newest events of the channels it listens to (Redis: app/bus/redis/tail.py)."""

    def read_held(self, channel: str, after: int, limit: int) -> ReadResult | None:
        """`read` from memory, when the channel is listened to and the cursor near its head;
        else None (await `read`)."""

    def head_held(self, channel: str) -> int | None:
        """The listened channel's newest cursor when held in memory, else None."""
