"""The fast lane: the ASGI dispatcher of the long-lived connections, `/ws` and SSE streams.

Their tasks live as long as the connection, and every middleware and router layer they pass
through would stay on their stack all that time (a large share of what an idle connection
costs). So these two URLs are dispatched here, in front of every middleware (Starlette's own
too: see `Fourcast` in app/main.py), straight to their endpoints, and nowhere else: the router
has no route for them. The stream endpoint adds the security headers and turns errors into
responses itself (app/web/api/stream.py). Every other URL is a FastAPI route. The OpenAPI schema describes the stream through `openapi_with_stream`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from .api.channels import channel_in
from .api.socket import websocket_endpoint
from .api.stream import serve_stream


class FastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: it hands back the endpoint's, so its frame is not on the stack.
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            return websocket_endpoint(scope, receive, send)
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            channel = channel_in(scope["path"], "/stream")
            if channel is not None:
                return serve_stream(scope, receive, send, channel)
        return self.app(scope, receive, send)


STREAM_OPERATION: dict[str, Any] = {
    "tags": ["transports"],
    "summary": "Stream",
    "description": "Server-Sent Events: the channel's events as `text/event-stream`. Resumes "
    "from `Last-Event-ID` or `?after=`; without either, live from now.",
    "operationId": "stream_api_channels__channel__stream_get",
    "parameters": [
        {"name": "channel", "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": "after",
            "in": "query",
            "required": False,
            "description": "A cursor to resume after",
            "schema": {"type": "string"},
        },
        {
            "name": "last-event-id",
            "in": "header",
            "required": False,
            "description": "The id of the last event received (EventSource sends it)",
            "schema": {"type": "string"},
        },
    ],
    "responses": {
        "200": {
            "description": "The event stream",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        "400": {"description": "A bad channel or cursor"},
        "401": {"description": "A credential that is wrong, expired or signed out"},
        "403": {"description": "The caller may not read this channel, or SSE is off"},
        "429": {"description": "Too many connections, or over the subscribe budget"},
        "503": {"description": "The server is full or restarting; retry after `Retry-After`"},
    },
}


def openapi_with_stream(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema of the routes, plus the SSE stream the fast lane serves."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        path = schema.setdefault("paths", {}).setdefault("/api/channels/{channel}/stream", {})
        path["get"] = STREAM_OPERATION
        app.openapi_schema = schema
    return app.openapi_schema
