"""`/asyncapi.json`: the AsyncAPI 3.0 document of the WebSocket `/ws` and of the SSE stream.

OpenAPI (`/docs`) describes requests and answers; the conversation on a socket or stream is what
AsyncAPI describes: every op a client sends, every message the server sends, the close codes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ... import __version__
from ..ws import codes

router = APIRouter(include_in_schema=False)

PATH = "/asyncapi.json"
JSON = "application/json"
REF = {"type": "string", "description": "Echoed by the reply, to match it to the request."}
CURSOR = {"type": "string", "description": "An event's id or a poll's `next`: opaque."}
CHANNEL = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$", "examples": ["room:lobby"]}
TYPE = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$", "examples": ["chat.message"]}

CLOSE_CODES = {
    codes.CLOSE_NORMAL: "normal close: the connection ended with nothing to report",
    codes.CLOSE_POLICY: "policy: failed auth op or repeated abuse; do not retry as is",
    codes.CLOSE_TOO_BIG: "a message over the inbound limit (64 KiB)",
    codes.CLOSE_ERROR: "server error: reconnect and resume by cursor",
    codes.CLOSE_RESTART: "server restarting: reconnect and resume by cursor",
    codes.CLOSE_SLOW: "too slow a reader: reconnect and resume by cursor",
    codes.CLOSE_EXPIRED: "credentials expired or signed out: reconnect with a new token",
    codes.CLOSE_FORBIDDEN: "forbidden: do not reconnect (reserved; not sent today)",
}

EVENT_FIELDS: dict[str, Any] = {
    "id": {"type": ["string", "null"], "description": "The cursor; null when ephemeral."},
    "channel": CHANNEL,
    "type": TYPE,
    "ts": {"type": "number", "description": "Acceptance time, ms since the epoch."},
    "from": {"type": "string", "examples": ["user:5f0c3a7d2b9e4411", "service:fourcast"]},
    "data": {"description": "Any JSON value up to 64 KiB encoded."},
}


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
        {
            "op": "event",
            "id": "42",
            "channel": "room:lobby",
            "type": "chat.message",
            "ts": 1795852593128.909,
            "from": "user:5f0c3a7d2b9e4411",
            "data": {"text": "hello"},
        },
    ),
    "reset": _message(
        "reset",
        "The cursor was older than the history or unknown: the retained events follow.",
        _object("reset", ["channel"], channel=CHANNEL),
        {"op": "reset", "channel": "room:lobby"},
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
        {
            "id": "42",
            "channel": "room:lobby",
            "type": "chat.message",
            "ts": 1795852593128.909,
            "from": "user:5f0c3a7d2b9e4411",
            "data": {"text": "hello"},
        },
    ),
    "sseReset": _message(
        "reset",
        "`event: reset`: the cursor was older than the history or unknown; the retained "
        "events follow.",
        _object(None, ["channel"], channel=CHANNEL),
        {"channel": "room:lobby"},
    ),
}


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(parts)}


def document(host: str, secure: bool = False) -> dict[str, Any]:
    """The whole document, with the server as the client reached it."""
    ws = _ref("channels", "websocket")
    operations: dict[str, Any] = {}
    for op in CLIENT_OPS:
        operations[op] = {
            "action": "send",
            "channel": ws,
            "summary": CLIENT_OPS[op]["summary"],
            "messages": [_ref("channels", "websocket", "messages", op)],
            "reply": {
                "channel": ws,
                "messages": [
                    _ref("channels", "websocket", "messages", REPLIES[op]),
                    _ref("channels", "websocket", "messages", "error"),
                ],
            },
        }
    for name in SERVER_MESSAGES:
        operations[f"receive{name.title()}"] = {
            "action": "receive",
            "channel": ws,
            "messages": [_ref("channels", "websocket", "messages", name)],
        }
    operations["streamEvents"] = {
        "action": "receive",
        "channel": _ref("channels", "sse"),
        "summary": "Read a channel as Server-Sent Events.",
        "messages": [_ref("channels", "sse", "messages", name) for name in SSE_MESSAGES],
    }
    codes = "\n".join(f"- `{code}`: {text}" for code, text in CLOSE_CODES.items())
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "fourcast real-time API",
            "version": __version__,
            "description": "The WebSocket and SSE transports of fourcast. The wire contract, "
            "with the HTTP calls and the poll transports, is docs/protocol.md; the REST API is "
            "at /docs.",
        },
        "defaultContentType": JSON,
        "servers": {
            "ws": {"host": host, "protocol": "wss" if secure else "ws"},
            "http": {"host": host, "protocol": "https" if secure else "http"},
        },
        "channels": {
            "websocket": {
                "address": "/ws",
                "title": "WebSocket",
                "description": "Text frames, one JSON object each; subprotocol `fourcast.v1`. "
                "Credentials: cookie, Authorization header, subprotocol "
                "`fourcast.bearer.<token>`, `?ticket=`, or the `auth` op. Close codes:\n" + codes,
                "servers": [_ref("servers", "ws")],
                "messages": {**CLIENT_OPS, **SERVER_MESSAGES},
                "x-close-codes": {str(code): text for code, text in CLOSE_CODES.items()},
            },
            "sse": {
                "address": "/api/channels/{channel}/stream",
                "title": "Server-Sent Events",
                "description": "Resumes after `Last-Event-ID` or `?after=`; without either, "
                "live from now. Starts with `: connected` and `retry: 2000`; a `: keepalive` "
                "comment comes every 15 s.",
                "parameters": {"channel": {"description": "The channel to read."}},
                "servers": [_ref("servers", "http")],
                "messages": SSE_MESSAGES,
            },
        },
        "operations": operations,
    }


@router.get(PATH)
async def asyncapi(request: Request) -> JSONResponse:
    host = request.headers.get("host") or "127.0.0.1:8000"
    return JSONResponse(document(host, request.url.scheme == "https"))
