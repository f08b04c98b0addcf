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
from .asyncapi_messages import CLIENT_OPS, JSON, REPLIES, SERVER_MESSAGES, SSE_MESSAGES

router = APIRouter(include_in_schema=False)

PATH = "/asyncapi.json"

CLOSE_CODES = {
    codes.CLOSE_NORMAL: "normal close: the connection ended with nothing to report",
    codes.CLOSE_POLICY: "policy: in answer to the auth op, its token was refused (reconnect "
    "with a new token); else repeated abuse (the credentials are fine: reconnect after a pause "
    "of at least 5 s and resume by cursor)",
    codes.CLOSE_TOO_BIG: "a message over the inbound limit (64 KiB)",
    codes.CLOSE_ERROR: "server error: reconnect and resume by cursor",
    codes.CLOSE_RESTART: "server restarting: reconnect and resume by cursor",
    codes.CLOSE_SLOW: "too slow a reader: reconnect and resume by cursor",
    codes.CLOSE_EXPIRED: "credentials expired or signed out: reconnect with a new token",
    codes.CLOSE_FORBIDDEN: "forbidden: do not reconnect (reserved; not sent today)",
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
