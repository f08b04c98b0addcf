"""The event model: validation, cursors, and the one-time encoding every transport reuses.

An event is encoded exactly once, when it is accepted. The JSON body, the WebSocket frame and the
SSE frame are all cut from that one encoding, so fanning out to N subscribers on any transport
costs N socket writes and no further serialisation.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

CHANNEL_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
TYPE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CURSOR_RE = re.compile(r"[0-9]{1,19}")
POLL_CURSOR_RE = re.compile(r"([0-9]{1,19})(?:_([0-9]{1,19}))?")
NAMESPACES = ("room", "user", "public")

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
    match = POLL_CURSOR_RE.fullmatch(cursor)
    if match is None or int(match[1]) >= 2**63:
        raise EventError("invalid_cursor", "cursor is not one this server issued")
    marker = None if match[2] is None else int(match[2]) / 1000
    return int(match[1]), marker


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


@dataclass(slots=True, eq=False)
class Event:
    """An accepted event. `seq` is None for an ephemeral event (never stored, no cursor)."""

    channel: str
    type: str
    data: bytes
    """The `data` value, already JSON-encoded."""
    ts: float
    sender: str
    seq: int | None = None
    json: bytes = field(default=b"", repr=False)
    """The whole event as JSON: the body for polls and the `data:` of an SSE frame."""
    ws_text: str = field(default="", repr=False)
    """The WebSocket `{"op": "event", ...}` frame."""
    sse_frame: bytes = field(default=b"", repr=False)
    ws_message: dict[str, Any] = field(default_factory=dict, repr=False)
    """The ASGI message that sends `ws_text`: one dict shared by every WebSocket subscriber."""

    def __post_init__(self) -> None:
        self.encode()

    @property
    def cursor(self) -> str | None:
        return None if self.seq is None else format_cursor(self.seq)

    @property
    def size(self) -> int:
        return len(self.json)

    def encode(self) -> None:
        cursor = self.cursor
        head = orjson.dumps(
            {
                "id": cursor,
                "channel": self.channel,
                "type": self.type,
                "ts": self.ts,
                "from": self.sender,
            }
        )
        # Splice the pre-encoded data in rather than decoding and re-encoding it.
        self.json = head[:-1] + b',"data":' + self.data + b"}"
        self.ws_text = '{"op":"event",' + self.json[1:].decode()
        self.ws_message = {"type": "websocket.send", "text": self.ws_text}
        # Channel, type and cursor are validated against [A-Za-z0-9_.:-], and orjson escapes
        # control characters, so no line of this frame can carry CR, LF or NUL.
        id_line = b"" if cursor is None else b"id: " + cursor.encode() + b"\n"
        self.sse_frame = (
            id_line + b"event: " + self.type.encode() + b"\ndata: " + self.json + b"\n\n"
        )

    def to_dict(self) -> dict[str, Any]:
        return orjson.loads(self.json)  # type: ignore[no-any-return]
