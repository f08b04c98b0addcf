"""The fast lane: the ASGI dispatcher of the long-lived connections, `/ws` and SSE streams,
and of polls and publishes.

Their tasks live as long as the connection, and every middleware and router layer they pass
through would stay on their stack all that time (a large share of what an idle connection
costs). So these two URLs are dispatched here, in front of every middleware (Starlette's own
too: see `Fourcast` in app/main.py), straight to their endpoints; the router's routes for them
only answer what the fast lane does not take, such as a wrong method (app/web/api/lanes.py).
The stream endpoint adds the security headers and turns errors into responses itself
(app/web/api/stream.py). A poll (GET of a channel's `/events`) is answered
here too, by the poll core, when its caller can be told without awaiting
(app/web/pollentry.py): the router's layers would cost more than the answer; the others go on
to the poll route. A publish (POST to a channel's `/events`) is answered here by the route's
own function, behind the body cap and security headers (app/web/publishentry.py). Every other
URL is a FastAPI route. The OpenAPI schema describes the stream through `openapi_with_stream`,
polls and publishes through their routes.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from ..server.quick_adopt import adopt_connection
from .api.channels import channel_in
from .api.socket import websocket_endpoint
from .api.stream import serve_stream
from .pollentry import serve_poll


class FastLane:
    def __init__(self, app: ASGIApp, publishing: ASGIApp) -> None:
        self.app = app
        self.publishing = publishing
        """A publish's own stack: the body cap and security headers (app/web/publishentry.py)."""

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: it hands back the endpoint's, so its frame is not on the stack.
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            return websocket_endpoint(scope, receive, send)
        if scope["type"] == "http":
            adopt_connection(send)  # plain uvicorn: its next request takes the quick lane
            method = scope["method"]
            if method == "GET" or method == "HEAD":
                path = scope["path"]
                channel = channel_in(path, "/stream")
                if channel is not None:
                    return serve_stream(scope, receive, send, channel)
                if method == "GET":
                    channel = channel_in(path, "/events")
                    if channel is not None:
                        return self._poll(scope, receive, send, channel)
            elif method == "POST":
                channel = channel_in(scope["path"], "/events")
                if channel is not None:
                    scope["path_params"] = {"channel": channel}
                    return self.publishing(scope, receive, send)
        return self.app(scope, receive, send)

    async def _poll(self, scope: Scope, receive: Receive, send: Send, channel: str) -> None:
        if not await serve_poll(scope, receive, send, channel):
            await self.app(scope, receive, send)  # the route: see app/web/pollentry.py


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
