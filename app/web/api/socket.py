"""WebSocket `/ws`: the handshake (auth, caps, subprotocol), then one `Connection` per socket.

The connection itself lives in `app/web/ws/`: its state and read loop (connection.py), its ops
(ops.py) and its writer (writer.py).
"""

from __future__ import annotations

from collections.abc import Awaitable

from fastapi import APIRouter
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from ...errors import Forbidden, FourcastError
from ...server.websocket_adopt import denied
from ..checks import check_origin
from ..deps import client_ip, forget_headers, get_reader, services_of
from ..errors import response_for
from ..ws.codes import BEARER_PREFIX, SUBPROTOCOL
from ..ws.connection import Connection
from ..ws.ops import OPS

__all__ = ["OPS", "Connection", "router", "websocket_endpoint"]

router = APIRouter(tags=["transports"])


class WebSocketEndpoint:
    """`/ws` as a plain ASGI app rather than a FastAPI function endpoint, so that the raw ASGI
    `send` is at hand for the `fourcast.frames` extension (Starlette's WebSocket.send only
    passes the standard message types)."""

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        return serve(WebSocket(scope, receive, send), receive, send)  # no frame of its own


websocket_endpoint = WebSocketEndpoint()
"""Dispatched by the fast lane (app/web/fastlane.py), the one way in to `/ws`."""


async def serve(websocket: WebSocket, raw_receive: Receive, raw_send: Send) -> None:
    services = services_of(websocket)
    settings = services.settings
    offered = websocket.scope.get("subprotocols") or []
    token = next((p[len(BEARER_PREFIX) :] for p in offered if p.startswith(BEARER_PREFIX)), None)
    ip = client_ip(websocket, settings.trusted_proxies)
    try:
        if not settings.ws_upgrades_enabled:
            raise Forbidden("WebSocket is disabled on this server", code="transport_disabled")
        principal, ticket = await get_reader(websocket, token)
        if principal.via_cookie:
            check_origin(websocket, settings)
        user = principal.id if principal.is_user else None
        services.connections.acquire(user, ip)
        if ticket is not None:
            # Spent by a socket that is going to be accepted, not by one refused at a cap.
            try:
                await services.tokens.spend_ticket(ticket)
            except BaseException:
                services.connections.release(user, ip)
                raise
    except FourcastError as exc:
        # Refused before the upgrade: the client gets an HTTP status and a JSON body.
        await websocket.send_denial_response(response_for(exc))
        denied(raw_send)
        return
    services.metrics.open["websocket"].inc()
    connection = Connection(websocket, raw_receive, raw_send, services, principal)
    connection.counted_user = user
    connection.ip = ip
    try:
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        forget_headers(websocket.scope)  # ops carry their own tokens
        await connection.run()
    finally:
        services.metrics.open["websocket"].dec()
        # The auth op may have made it a person's connection since the handshake.
        services.connections.release(connection.counted_user, ip)
