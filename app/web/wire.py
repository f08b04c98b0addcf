"""Wire framing of events: WebSocket frames, SSE frames and HTTP/1.1 chunks.

Encode once, same bytes to every subscriber: an event's frame for a transport is made on first
use and kept in the event's `wire` slot, which the bus carries but never reads, so fanning one
event out to N connections costs N socket writes and no further encoding. Server frames are not
masked and (without compression) identical for every client, which is what makes this possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..bus.events import Event, format_cursor
from ..bus.sink import Item

SSE_END = b"\n\n"
KEEPALIVE = b": keepalive\r\n\r\n"


class Frames:
    """An event's encodings, each made on first use (the `Event.wire` cache)."""

    __slots__ = ("sse_chunk", "ws_frame", "ws_message")

    def __init__(self) -> None:
        self.ws_frame: bytes | None = None
        self.ws_message: dict[str, Any] | None = None
        self.sse_chunk: bytes | None = None


def _frames(event: Event) -> Frames:
    frames = event.wire
    if not isinstance(frames, Frames):
        frames = event.wire = Frames()
    return frames


def ws_text(event: Event) -> str:
    """`{"op": "event", ...}`: the event's JSON with the operation spliced in."""
    return '{"op":"event",' + event.json[1:].decode()


def ws_message(event: Event) -> dict[str, Any]:
    """The ASGI message sending the event: one dict shared by every WebSocket."""
    frames = _frames(event)
    message = frames.ws_message
    if message is None:
        message = frames.ws_message = {"type": "websocket.send", "text": ws_text(event)}
    return message


def ws_frame(event: Event) -> bytes:
    """The whole WebSocket frame carrying the event (see app/server/websocket.py)."""
    frames = _frames(event)
    frame = frames.ws_frame
    if frame is None:
        frame = frames.ws_frame = text_frame(b'{"op":"event",' + event.json[1:])
    return frame


def sse_head(event: Event) -> bytes:
    """An SSE frame is `sse_head + json + SSE_END`. The cursor is digits and orjson escapes
    control characters, so no line of the frame can carry CR, LF or NUL. Events have no `event:`
    line (the default name, `message`, with the type inside the data): only control frames such
    as `reset` are named, so no published type can pass for one."""
    cursor = event.cursor
    id_line = b"" if cursor is None else b"id: " + cursor.encode() + b"\n"
    return id_line + b"data: "


def sse_frame(event: Event) -> bytes:
    return sse_head(event) + event.json + SSE_END


def sse_chunk(event: Event) -> bytes:
    """The SSE frame as one HTTP/1.1 chunk (a streamed response is chunked), written as it is to
    every stream (see app/server/http.py)."""
    frames = _frames(event)
    chunk = frames.sse_chunk
    if chunk is None:
        frame = sse_frame(event)
        chunk = frames.sse_chunk = b"%x\r\n%b\r\n" % (len(frame), frame)
    return chunk


def reset_frame(channel: str, after: int) -> bytes:
    """A reset, whose `id:` is the cursor the stream now stands after: a reconnect resumes there
    (EventSource's Last-Event-ID), not from the cursor that was reset."""
    cursor = format_cursor(after).encode()
    return b"event: reset\nid: " + cursor + b'\ndata: {"channel":"' + channel.encode() + b'"}\n\n'


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame (RFC 6455 section 5.2) carrying `payload`."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


def sse_items(items: Sequence[Item]) -> tuple[bytes, int, float | None]:
    """The frames of queued items as one chunk, the count of events, and the newest `ts`."""
    parts: list[bytes] = []
    events = 0
    newest: float | None = None
    for item in items:
        if isinstance(item, tuple):
            if item[0] == "reset":
                parts.append(reset_frame(item[1], item[2]))
        else:
            parts.append(sse_frame(item))
            events += 1
            newest = item.ts
    return b"".join(parts), events, newest
