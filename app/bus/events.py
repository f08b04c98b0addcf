"""The event model: validation, cursors, and the one-time encoding every transport reuses.

An event is encoded exactly once, when it is accepted. The JSON body, the WebSocket frame and the
SSE frame are all cut from that one encoding, so fanning out to N subscribers on any transport
costs N socket writes and no further serialisation.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

CHANNEL_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
TYPE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CURSOR_RE = re.compile(r"[0-9]{1,19}")
POLL_CURSOR_RE = re.compile(r"([0-9]{1,19})(?:_([0-9]{1,19}))?")
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


class Event:
    """An accepted event. `seq` is None for an ephemeral event (never stored, no cursor).

    Memory matters here: a channel retains `history_size` events. So only the JSON encoding is
    kept whole; `data` is a slice of it when asked for, the SSE frame is a small header written
    before that same JSON, and the WebSocket text is made on first use and then shared.
    """

    __slots__ = (
        "_data_at",
        "_sse_chunk",
        "_ws_frame",
        "_ws_message",
        "channel",
        "json",
        "sender",
        "seq",
        "sse_head",
        "ts",
        "type",
    )

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
        """The whole event as JSON: the body for polls and the `data:` of an SSE frame."""
        # The cursor is digits and orjson escapes control characters, so no line of an SSE frame
        # can carry CR, LF or NUL. Events have no `event:` line (the default name, `message`,
        # with the type inside the data): only control frames such as `reset` are named, so no
        # published type can pass for one.
        id_line = b"" if cursor is None else b"id: " + cursor.encode() + b"\n"
        self.sse_head: bytes = id_line + b"data: "
        """An SSE frame is `sse_head + json + SSE_END`."""
        self._ws_message: dict[str, Any] | None = None
        self._ws_frame: bytes | None = None
        self._sse_chunk: bytes | None = None

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

    @property
    def ws_text(self) -> str:
        return self.ws_message["text"]  # type: ignore[no-any-return]

    @property
    def ws_message(self) -> dict[str, Any]:
        """The ASGI message sending `{"op": "event", ...}`: one dict shared by every WebSocket."""
        message = self._ws_message
        if message is None:
            text = '{"op":"event",' + self.json[1:].decode()
            message = self._ws_message = {"type": "websocket.send", "text": text}
        return message

    @property
    def ws_frame(self) -> bytes:
        """The whole WebSocket frame for `{"op": "event", ...}`: without compression the same
        bytes for every client, so it is made on first use and then shared."""
        frame = self._ws_frame
        if frame is None:
            frame = self._ws_frame = text_frame(b'{"op":"event",' + self.json[1:])
        return frame

    @property
    def sse_frame(self) -> bytes:
        return self.sse_head + self.json + SSE_END

    @property
    def sse_chunk(self) -> bytes:
        """The SSE frame as one HTTP/1.1 chunk (a streamed response is chunked): made on first
        use and then written as it is to every stream, like `ws_frame`."""
        chunk = self._sse_chunk
        if chunk is None:
            frame = self.sse_frame
            chunk = self._sse_chunk = b"%x\r\n%b\r\n" % (len(frame), frame)
        return chunk

    def to_dict(self) -> dict[str, Any]:
        return orjson.loads(self.json)  # type: ignore[no-any-return]


SSE_END = b"\n\n"


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame (RFC 6455 section 5.2) carrying `payload`."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload
