"""The two busiest endpoints, publish and poll, served without FastAPI's routing and dependency
machinery: measured, that machinery was most of their cost per request. The same handler
functions back the FastAPI routes, which stay for the OpenAPI schema; only dispatch differs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..bus import BusUnavailable
from ..errors import FourcastError
from .api import channels
from .api.socket import websocket_endpoint
from .api.stream import serve_stream
from .deps import get_principal, services_of
from .errors import bus_unavailable_response, response_for

PREFIX = "/api/channels/"
SUFFIX = "/events"
STREAM_SUFFIX = "/stream"
HANDLERS = {"POST": channels.publish}


class WebSocketLane:
    """`/ws` and SSE streams straight to their endpoints. Their tasks live as long as the
    connection, and every middleware and router layer they pass through stays on their stack:
    with 10,000 idle connections those frames are a large share of the memory per connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            await websocket_endpoint(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(STREAM_SUFFIX):
                channel = path[len(PREFIX) : -len(STREAM_SUFFIX)]
                if channel and "/" not in channel:
                    await serve_stream(scope, receive, send, channel)
                    return
        await self.app(scope, receive, send)


class FastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            handler = HANDLERS.get(scope["method"])
            if handler is not None and path.startswith(PREFIX) and path.endswith(SUFFIX):
                channel = path[len(PREFIX) : -len(SUFFIX)]
                if channel and "/" not in channel:
                    request = Request(scope, receive)
                    try:
                        services = services_of(request)
                        response = await handler(
                            channel, request, services, await get_principal(request)
                        )
                    except FourcastError as exc:
                        response = response_for(exc)
                    except BusUnavailable as exc:
                        response = bus_unavailable_response(exc)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
