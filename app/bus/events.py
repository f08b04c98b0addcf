"""The event model: validation, cursors, and the one JSON encoding every transport reuses.

An event is encoded exactly once, when it is accepted: `Event.json`. The transports' frames are
cut from it by the web layer (app/web/wire.py), which keeps them in the event's `wire` slot.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

CHANNEL_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
TYPE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CURSOR_RE = re.compile(r"[0-9]{1,19}")
NAMESPACES = ("room", "user", "public")
CONTROL_WORDS = frozenset(
    {
        # WebSocket ops, both ways (docs/protocol.md)
        *("ack", "auth", "error", "event", "ping", "pong", "publish", "refresh", "reset"),
        *("subscribe", "unsubscribe", "welcome"),
        # SSE: the default event name and EventSource's own events
        *("message", "open", "close"),
    }
)
"""Words the protocol itself speaks: never an event type, whoever publishes (compared without
case, so no client that folds case can mistake an event for a control message either)."""

START = 0
"""The cursor before the first event of every channel."""


class EventError(ValueError):
    """Bad input for an event: the code names the contract's error, the message explains it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validate_channel(channel: object) -> str:
    if not isinstance(channel, str) or not CHANNEL_RE.fullmatch(channel):
        raise EventError("invalid_channel", "channel must match ^[A-Za-z0-9_.:-]{1,128}$")
    namespace, sep, rest = channel.partition(":")
    if not sep or not rest or namespace not in NAMESPACES:
        raise EventError(
            "invalid_channel", "channel must be room:<name>, user:<id> or public:<name>"
        )
    return channel


def validate_type(event_type: object) -> str:
    if not isinstance(event_type, str) or not TYPE_RE.fullmatch(event_type):
        raise EventError("invalid_type", "type must match ^[A-Za-z0-9_.-]{1,64}$")
    if event_type.lower() in CONTROL_WORDS:
        raise EventError("reserved_type", f"{event_type!r} is a protocol word, not an event type")
    return event_type


def parse_cursor(cursor: object) -> int:
    """Decode a client's cursor. Cursors are opaque to clients; here they are a channel sequence."""
    if isinstance(cursor, int) and not isinstance(cursor, bool) and 0 <= cursor < 2**63:
        return cursor
    if isinstance(cursor, str) and CURSOR_RE.fullmatch(cursor) and int(cursor) < 2**63:
        return int(cursor)
    raise EventError("invalid_cursor", "cursor is not one this server issued")


def format_cursor(seq: int) -> str:
    return str(seq)


def parse_poll_cursor(cursor: str) -> tuple[int, float | None]:
    """A poll's `next` cursor: the durable cursor, and when the poll last saw live-only events.

    Polling readers have no open connection to receive ephemeral events on, so their cursor also
    remembers the time of their last read; the next poll returns the recent ephemeral events since.
    """
    # `[0-9]{1,19}(_[0-9]{1,19})?`, checked without a regular expression: every poll runs this.
    seq, sep, mark = cursor.partition("_")
    if not _digits(seq) or (sep and not _digits(mark)):
        raise EventError("invalid_cursor", "cursor is not one this server issued")
    number = int(seq)  # once: `int` of a str copies it to ASCII first
    if number >= 2**63:
        raise EventError("invalid_cursor", "cursor is not one this server issued")
    return number, int(mark) / 1000 if sep else None


def _digits(text: str) -> bool:
    """1 to 19 ASCII digits (`str.isdigit` alone also takes other scripts' digits)."""
    return 0 < len(text) <= 19 and text.isascii() and text.isdigit()


def format_poll_cursor(seq: int, marker_ms: float) -> str:
    return f"{seq}_{round(marker_ms * 1000)}"


def encode_data(data: Any, max_bytes: int) -> bytes:
    try:
        encoded = orjson.dumps(data)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise EventError("invalid_data", f"data is not JSON-encodable: {exc}") from None
    if len(encoded) > max_bytes:
        raise EventError("data_too_large", f"data is {len(encoded)} bytes, limit {max_bytes}")
    return encoded


def now_ms() -> float:
    return round(time.time() * 1000, 3)


def position(event: Event) -> int:
    """A durable event's cursor (`seq`), which only ephemeral events lack."""
    seq = event.seq
    if seq is None:
        raise ValueError(f"{event!r} is ephemeral: it has no cursor")
    return seq


class Event:
    """An accepted event. `seq` is None for an ephemeral event (never stored, no cursor).

    Memory matters here: a channel retains `history_size` events. So only the JSON encoding is
    kept whole; `data` is a slice of it when asked for.
    """

    __slots__ = ("_data_at", "channel", "json", "sender", "seq", "ts", "type", "wire")

    def __init__(
        self, channel: str, type: str, data: bytes, ts: float, sender: str, seq: int | None = None
    ) -> None:
        self.channel = channel
        self.type = type
        self.ts = ts
        self.sender = sender
        self.seq = seq
        cursor = None if seq is None else format_cursor(seq)
        head = orjson.dumps(
            {"id": cursor, "channel": channel, "type": type, "ts": ts, "from": sender}
        )
        # Splice the pre-encoded data in rather than decoding and re-encoding it.
        prefix = head[:-1] + b',"data":'
        self._data_at = len(prefix)
        self.json: bytes = prefix + data + b"}"
        """The whole event as JSON: the body for polls, the payload of every frame."""
        self.wire: object = None
        """The web layer's cache of this event's frames (app/web/wire.py); the bus never reads
        it, and it is shared by every subscriber."""

    def __repr__(self) -> str:
        return f"Event({self.channel!r}, {self.type!r}, seq={self.seq!r}, ts={self.ts!r})"

    @property
    def data(self) -> bytes:
        """The `data` value, JSON-encoded."""
        return self.json[self._data_at : -1]

    @property
    def cursor(self) -> str | None:
        return None if self.seq is None else format_cursor(self.seq)

    @property
    def size(self) -> int:
        return len(self.json)

    def to_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.json)
        return value
