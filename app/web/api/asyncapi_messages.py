"""The messages of `/asyncapi.json`: every op a client sends on `/ws`, every message the server
sends back, and the SSE stream's events, each a JSON Schema payload with an example.

Apart from the document's assembly (app/web/api/asyncapi.py), so that a new op is one entry here.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
REF = {"type": "string", "description": "Echoed by the reply, to match it to the request."}
CURSOR = {"type": "string", "description": "An event's id or a poll's `next`: opaque."}
CHANNEL = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$", "examples": ["room:lobby"]}
TYPE = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$", "examples": ["chat.message"]}

EVENT_FIELDS: dict[str, Any] = {
    "id": {"type": ["string", "null"], "description": "The cursor; null when ephemeral."},
    "channel": CHANNEL,
    "type": TYPE,
    "ts": {"type": "number", "description": "Acceptance time, ms since the epoch."},
    "from": {"type": "string", "examples": ["user:5f0c3a7d2b9e4411", "service:fourcast"]},
    "data": {"description": "Any JSON value up to 64 KiB encoded."},
}
EXAMPLE_EVENT: dict[str, Any] = {
    "id": "42",
    "channel": "room:lobby",
    "type": "chat.message",
    "ts": 1795852593128.909,
    "from": "user:5f0c3a7d2b9e4411",
    "data": {"text": "hello"},
}
"""One event as the WebSocket (with its `op`) and SSE (as `data:`) examples show it."""


def _object(op: str | None, required: list[str], **fields: Any) -> dict[str, Any]:
    properties = {"op": {"const": op}} if op else {}
    properties.update(fields)
    return {
        "type": "object",
        "required": (["op"] if op else []) + required,
        "properties": properties,
    }


def _message(name: str, summary: str, payload: dict[str, Any], example: dict[str, Any]) -> Any:
    return {
        "name": name,
        "summary": summary,
        "contentType": JSON,
        "payload": payload,
        "examples": [{"payload": example}],
    }


CLIENT_OPS: dict[str, Any] = {
    "auth": _message(
        "auth",
        "Authenticate an open connection; a bad token closes it with 1008.",
        _object("auth", ["token"], token={"type": "string"}, ref=REF),
        {"op": "auth", "token": "eyJhbGciOi...", "ref": "1"},
    ),
    "refresh": _message(
        "refresh",
        "Swap in a new token for the same person before `exp`, without reconnecting.",
        _object("refresh", ["token"], token={"type": "string"}, ref=REF),
        {"op": "refresh", "token": "eyJhbGciOi...", "ref": "5"},
    ),
    "subscribe": _message(
        "subscribe",
        "Follow a channel: with `after`, history after that cursor first; without, from now.",
        _object("subscribe", ["channel"], channel=CHANNEL, after=CURSOR, ref=REF),
        {"op": "subscribe", "channel": "room:lobby", "after": "41", "ref": "2"},
    ),
    "unsubscribe": _message(
        "unsubscribe",
        "Stop following a channel.",
        _object("unsubscribe", ["channel"], channel=CHANNEL, ref=REF),
        {"op": "unsubscribe", "channel": "room:lobby", "ref": "3"},
    ),
    "publish": _message(
        "publish",
        "Publish an event; rate limits answer with an error op carrying retry_after.",
        _object(
            "publish",
            ["channel", "type", "data"],
            channel=CHANNEL,
            type=TYPE,
            data=EVENT_FIELDS["data"],
            ephemeral={"type": "boolean"},
            ref=REF,
        ),
        {"op": "publish", "channel": "room:lobby", "type": "chat.message", "data": {"text": "hi"}},
    ),
    "ping": _message(
        "ping",
        "Measure the round trip and the server clock.",
        _object("ping", [], ts={"type": "number"}, ref=REF),
        {"op": "ping", "ts": 1795852593000},
    ),
}

USER = {"type": ["object", "null"], "description": "`{id, name}` of a person, or null."}
SERVER_MESSAGES: dict[str, Any] = {
    "welcome": _message(
        "welcome",
        "Sent right after the upgrade.",
        _object(
            "welcome",
            ["client_id", "heartbeat"],
            client_id={"type": "string"},
            user=USER,
            heartbeat={"type": "number", "description": "Seconds between protocol pings."},
        ),
        {"op": "welcome", "client_id": "k3v9QmXw", "user": None, "heartbeat": 25},
    ),
    "event": _message(
        "event",
        "An event of a subscribed channel.",
        _object("event", ["id", "channel", "type", "ts", "data"], **EVENT_FIELDS),
        {"op": "event", **EXAMPLE_EVENT},
    ),
    "reset": _message(
        "reset",
        "The cursor was older than the history or unknown: the retained events follow. `next` is "
        "the cursor the subscription now stands after: resume from it, not the one reset.",
        _object("reset", ["channel", "next"], channel=CHANNEL, next=CURSOR),
        {"op": "reset", "channel": "room:lobby", "next": "0"},
    ),
    "ack": _message(
        "ack",
        "Reply to auth (`user`), refresh (`expires_at`), subscribe (`channel`, `next`), "
        "unsubscribe, publish (`id`, `ts`).",
        _object(
            "ack",
            [],
            ref=REF,
            user=USER,
            channel=CHANNEL,
            next=CURSOR,
            id={"type": ["string", "null"]},
            ts={"type": "number"},
            suppressed={"type": "boolean"},
            expires_at={"type": ["number", "null"]},
        ),
        {"op": "ack", "ref": "2", "channel": "room:lobby", "next": "41"},
    ),
    "pong": _message(
        "pong",
        "Reply to ping.",
        _object(
            "pong",
            ["server_ts"],
            ts={"type": ["number", "null"]},
            server_ts={"type": "number"},
            ref=REF,
        ),
        {"op": "pong", "ts": 1795852593000, "server_ts": 1795852593004.2},
    ),
    "error": _message(
        "error",
        "A recoverable error (bad op, invalid JSON, forbidden channel, rate limited): the "
        "connection stays open. More than 20 in 10 s closes it with 1008.",
        _object(
            "error",
            ["code", "message"],
            ref={**REF, "type": ["string", "null"]},
            code={"type": "string"},
            message={"type": "string"},
            retry_after={"type": "number"},
        ),
        {"op": "error", "ref": "4", "code": "forbidden", "message": "not allowed"},
    ),
}
REPLIES = {op: "pong" if op == "ping" else "ack" for op in CLIENT_OPS}

SSE_MESSAGES: dict[str, Any] = {
    "sseEvent": _message(
        "event",
        "`id:` the cursor (absent when ephemeral), `event:` the type, `data:` the event JSON.",
        _object(None, ["id", "channel", "type", "ts", "data"], **EVENT_FIELDS),
        EXAMPLE_EVENT,
    ),
    "sseReset": _message(
        "reset",
        "`event: reset`: the cursor was older than the history or unknown; the retained "
        "events follow.",
        _object(None, ["channel"], channel=CHANNEL),
        {"channel": "room:lobby"},
    ),
}
