"""How events sit in Redis Streams, and how their cursors are made.

An entry's id is `0-<seq>` (XADD `0-*`: Redis numbers each stream's entries one after the other).
A stream expires once idle (the append script's PEXPIRE), and a stream created, again or for the
first time, starts above the highest seq any stream was given (`<prefix>:seq`, raised by the same
script): its cursors name no event of an earlier incarnation, and a reader following the channel
from an old position reads all of it. Its fields are `t` type, `f` from, `ts` acceptance time, `d`
data, `e` the epoch it was written in (see epoch.py), and `b` on the first entry of a stream
created above 1 (so a read from the start knows nothing before it was trimmed).
A cursor is `epoch << SEQ_BITS | seq`: still one opaque integer on the wire, but after Redis lost
data and numbers a stream again from an older point, the events it numbers carry a new epoch and so
new cursors: no cursor is ever handed out for two events.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson

from ..events import TYPE_RE, Event

log = logging.getLogger(__name__)

StreamId = tuple[int, int]
Entry = tuple[bytes, dict[bytes, bytes]]

SEQ_BITS = 36
"""Events per channel before the cursor's epoch part is reached (about 68 billion)."""
SEQ_MASK = (1 << SEQ_BITS) - 1
EPOCH_LIMIT = 1 << 26
"""Epochs are drawn from [1, EPOCH_LIMIT): a cursor stays below 2**62."""


def parse_id(raw: bytes | str) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq)


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def make_cursor(epoch: int, seq: int) -> int:
    return (epoch << SEQ_BITS) | seq


def split_cursor(cursor: int) -> tuple[int, int]:
    """(epoch, seq) of a cursor; cursors of entries written before epochs existed have epoch 0."""
    return cursor >> SEQ_BITS, cursor & SEQ_MASK


def entry_epoch(fields: dict[bytes, bytes]) -> int:
    raw = fields.get(b"e")
    return int(raw) if raw else 0


def decode(channel: str, entries: Iterable[Entry]) -> list[Event]:
    """The well-formed entries as events; malformed ones are logged and skipped."""
    events = []
    for entry_id, fields in entries:
        try:
            ms, seq = parse_id(entry_id)
            if ms != 0:
                raise ValueError("not an id this backend assigns")
            event_type = fields[b"t"].decode()
            if not TYPE_RE.fullmatch(event_type):
                raise ValueError(f"bad type {event_type!r}")
            data = fields[b"d"]
            orjson.loads(data)  # spliced into every frame: it must be valid JSON
            cursor = make_cursor(entry_epoch(fields), seq)
            events.append(
                Event(
                    channel, event_type, data, float(fields[b"ts"]), fields[b"f"].decode(), cursor
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("skipping malformed entry %r in %s: %s", entry_id, channel, exc)
    return events
