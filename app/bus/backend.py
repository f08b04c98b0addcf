"""The small contracts the bus is built on: a backend that orders events, and a journal that keeps them.

A backend is the ordering authority for channels: it assigns cursors, keeps each channel's retained
history, and hands every accepted event (from this node or another) to the local hub through the
`deliver` callback it is started with. The in-process backend is one; the Redis backend is another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .events import Event


@dataclass(slots=True)
class Draft:
    """An event accepted by policy but not yet ordered (no cursor, no `ts` of acceptance)."""

    channel: str
    type: str
    data: bytes
    sender: str
    idempotency_key: str | None = None
    """Set for an idempotent publish: a backend may record where the event landed with it."""


@dataclass(slots=True)
class ReadResult:
    events: list[Event]
    next: int
    """Cursor to pass as `after` next time."""
    reset: bool = False
    """The caller's cursor was older than the retained history, or unknown."""
    more: bool = False
    """The page stopped short of `limit` before the end of the log (at a new epoch of the Redis
    backend): what follows is only learnt by reading on from `next`."""


@dataclass(slots=True)
class BackPage:
    """Retained events below a cursor, newest first (`Backend.read_back`)."""

    events: list[Event]
    read: int
    """Entries read to find them, malformed ones too: what the read cost."""
    older: int | None
    """The `before` to read on from; None: nothing older is retained."""


Deliver = Callable[[Sequence[Event]], None]


class BusUnavailable(RuntimeError):
    """The backend cannot accept or serve events right now (Redis or the database is down)."""


class OutcomeUnknown(BusUnavailable):
    """A write failed in a way that may still have kept it (the reply to a COMMIT lost): `events`
    are the batch's events as they would have been kept, so a retry can look for them."""

    def __init__(self, message: str, events: Sequence[Event]) -> None:
        super().__init__(message)
        self.events = list(events)

    def one(self, index: int) -> OutcomeUnknown:
        """The same failure, for the one publish at `index` in the batch."""
        return OutcomeUnknown(str(self), self.events[index : index + 1])


class Superseded(BusUnavailable):
    """An idempotent draft was not appended: its key's claim had passed to another publish by the
    time the append ran (a claim that expired while the append was held by the network). What
    the key holds now is that publish's, and answers this one."""


class PartlyAppended(BusUnavailable):
    """A batch whose appends ran, except for the drafts superseded (None in `events`)."""

    def __init__(self, events: Sequence[Event | None]) -> None:
        super().__init__("some drafts' idempotency claims were superseded")
        self.events = list(events)


class Backend(Protocol):
    async def start(self, deliver: Deliver) -> None:
        """Begin delivering live events to `deliver`, in cursor order per channel."""

    async def stop(self) -> None:
        """Flush and release everything."""

    async def append(self, drafts: Sequence[Draft]) -> list[Event]:
        """Order and keep durable events; when this returns they survive a crash."""

    async def publish_ephemeral(self, event: Event) -> None:
        """Deliver a live-only event to every node."""

    async def read(self, channel: str, after: int | None, limit: int) -> ReadResult:
        """Events after `after` (None: the latest `limit`), oldest first."""

    async def retained_below(self, channel: str, before: int | None) -> int:
        """How many retained events at most have a cursor below `before` (None: all retained);
        0 when `before` is not retained itself (too old or unknown: `read` would reset)."""

    async def read_back(self, channel: str, before: int | None, limit: int) -> BackPage:
        """Up to `limit` retained entries below `before` (None: the newest), read newest first:
        a page of the past costs what it reads, not the whole retained history."""

    async def listen(self, channel: str) -> None:
        """This node has its first local listener on `channel`."""

    async def unlisten(self, channel: str) -> None:
        """This node's last local listener on `channel` has gone."""

    async def check(self) -> None:
        """Raise BusUnavailable when the backend cannot serve."""


class Journal(Protocol):
    """Where durable events are kept: implemented by the store, so the bus never imports SQL."""

    async def append(
        self, events: Sequence[Event], keys: Sequence[str | None] | None = None
    ) -> None:
        """Keep a batch of events in one transaction, with their idempotency keys when given."""

    async def find_by_key(self, key: str, since: float) -> Event | None:
        """The first event kept under idempotency `key` with `ts >= since`, or None."""

    async def tail(self, channel: str, limit: int) -> tuple[list[Event], int]:
        """The last `limit` events of a channel, oldest first, and the channel's highest cursor."""

    async def read(self, channel: str, after: int, limit: int) -> list[Event]:
        """Events with a cursor greater than `after`, oldest first."""

    async def highest_cursor(self) -> int:
        """The highest cursor of any channel (0: none): where Redis epochs go on from, read
        only while no epoch is remembered (it may scan every event)."""

    async def remembered_epoch(self) -> int | None:
        """The highest Redis epoch remembered by `remember_epoch` (None: none yet)."""

    async def remember_epoch(self, epoch: int) -> None:
        """Remember `epoch` as the highest Redis epoch, unless a higher one is remembered."""

    async def check(self) -> None:
        """Raise when the journal cannot be used."""


class NullJournal:
    """Keeps nothing: history lives only in memory (tests and throwaway runs)."""

    async def append(
        self, events: Sequence[Event], keys: Sequence[str | None] | None = None
    ) -> None:
        return None

    async def find_by_key(self, key: str, since: float) -> Event | None:
        return None

    async def tail(self, channel: str, limit: int) -> tuple[list[Event], int]:
        return [], 0

    async def read(self, channel: str, after: int, limit: int) -> list[Event]:
        return []

    async def highest_cursor(self) -> int:
        return 0

    async def remembered_epoch(self) -> int | None:
        return None

    async def remember_epoch(self, epoch: int) -> None:
        return None

    async def check(self) -> None:
        return None


def event_from_json(raw: bytes | dict[str, Any]) -> Event:
    """Rebuild an event from its JSON form (stored idempotency results, Redis entries)."""
    import orjson

    from .events import parse_cursor

    obj = orjson.loads(raw) if isinstance(raw, bytes | str) else raw
    seq = None if obj.get("id") is None else parse_cursor(obj["id"])
    return Event(
        channel=obj["channel"],
        type=obj["type"],
        data=orjson.dumps(obj.get("data")),
        ts=float(obj["ts"]),
        sender=obj["from"],
        seq=seq,
    )
