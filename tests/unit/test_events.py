"""The event model: names, cursors, and the one encoding every transport reuses."""

from __future__ import annotations

import orjson
import pytest

from app.bus.events import (
    Event,
    EventError,
    encode_data,
    format_poll_cursor,
    parse_cursor,
    parse_poll_cursor,
    validate_channel,
    validate_type,
)
from app.web.wire import sse_chunk, sse_frame, sse_head, text_frame, ws_frame, ws_message, ws_text


@pytest.mark.parametrize(
    "channel", ["room:a", "user:123", "public:prices.eur-usd", "room:" + "x" * 123]
)
def test_valid_channels(channel: str) -> None:
    assert validate_channel(channel) == channel


@pytest.mark.parametrize(
    "channel", ["", "room", "room:", "other:x", "room:a b", "room:é", "room:" + "x" * 124, None, 5]
)
def test_invalid_channels(channel: object) -> None:
    with pytest.raises(EventError) as error:
        validate_channel(channel)
    assert error.value.code == "invalid_channel"


@pytest.mark.parametrize("event_type", ["chat.message", "a", "x" * 64, "under_score-dash.dot"])
def test_valid_types(event_type: str) -> None:
    assert validate_type(event_type) == event_type


@pytest.mark.parametrize("event_type", ["", "x" * 65, "new\nline", "a:b", None, 1])
def test_invalid_types(event_type: object) -> None:
    with pytest.raises(EventError):
        validate_type(event_type)


def test_cursors_round_trip_and_reject_garbage() -> None:
    assert parse_cursor("0") == 0 and parse_cursor("42") == 42 and parse_cursor(42) == 42
    for bad in ["", "-1", "1.5", "abc", "9" * 20, True, None, 2**63]:
        with pytest.raises(EventError):
            parse_cursor(bad)


def test_poll_cursor_carries_a_time_marker() -> None:
    cursor = format_poll_cursor(17, 1795852593128.909)
    assert parse_poll_cursor(cursor) == (17, 1795852593128.909)
    assert parse_poll_cursor("17") == (17, None)
    for bad in ["17_", "_1", "17_x", "1_2_3"]:
        with pytest.raises(EventError):
            parse_poll_cursor(bad)


def test_event_is_encoded_once_and_every_form_agrees() -> None:
    event = Event(
        "room:a", "chat.message", encode_data({"text": "hi\nthere"}, 1024), 1.5, "user:u", 7
    )
    body = orjson.loads(event.json)
    assert body == {
        "id": "7",
        "channel": "room:a",
        "type": "chat.message",
        "ts": 1.5,
        "from": "user:u",
        "data": {"text": "hi\nthere"},
    }
    assert orjson.loads(event.data) == {"text": "hi\nthere"}
    assert orjson.loads(ws_text(event)) == {"op": "event", **body}
    assert ws_message(event) is ws_message(event)  # one dict shared by every subscriber
    # Unnamed (the default `message`): the type travels inside the data.
    assert sse_frame(event) == b"id: 7\ndata: " + event.json + b"\n\n"


def test_sse_frame_lines_never_carry_cr_lf_or_nul() -> None:
    data = encode_data({"evil": "a\r\nid: 999\n\nevent: x\x00"}, 1024)
    frame = sse_frame(Event("room:a", "t", data, 1.0, "user:u", 3))
    lines = frame.split(b"\n")
    assert lines[0] == b"id: 3" and lines[1].startswith(b"data: ")
    assert lines[2:] == [b"", b""]
    assert b"\r" not in frame and b"\x00" not in frame


def test_ephemeral_event_has_no_id_line() -> None:
    event = Event("room:a", "typing", b"{}", 1.0, "user:u")
    assert event.cursor is None and orjson.loads(event.json)["id"] is None
    assert sse_frame(event).startswith(b"data: {")


def test_data_over_the_limit_is_refused() -> None:
    with pytest.raises(EventError) as error:
        encode_data("x" * 100, 50)
    assert error.value.code == "data_too_large"


def test_sse_chunk_is_the_frame_as_one_http_chunk_made_once() -> None:
    event = Event("room:a", "chat.message", b'{"text":"h\\u00e9"}', 1.5, "user:1", 7)
    frame = sse_head(event) + event.json + b"\n\n"
    assert sse_chunk(event) == f"{len(frame):x}\r\n".encode() + frame + b"\r\n"
    assert frame.startswith(b"id: 7\ndata: {")
    assert sse_chunk(event) is sse_chunk(event)  # shared by every stream, not rebuilt
    assert ws_frame(event) is ws_frame(event)
    assert ws_frame(event) == text_frame(ws_text(event).encode())


@pytest.mark.parametrize("word", ["reset", "error", "welcome", "ack", "pong", "message", "Reset"])
def test_protocol_words_are_not_event_types(word: str) -> None:
    with pytest.raises(EventError) as error:
        validate_type(word)
    assert error.value.code == "reserved_type"
    assert validate_type("reset.done") == "reset.done"  # a word inside a type is fine
