"""The router's routes for the URLs the fast lane serves before it (app/web/fastlane.py), so
that a request it does not take gets the answer any route gives: a wrong method is `405
method_not_allowed` with `Allow`, as everywhere, not `404`.

A stream's GET and HEAD never get here (the fast lane takes them); if one did, it is served the
same. `/ws` is a WebSocket upgrade, which the fast lane takes; a plain HTTP GET of it is `426
upgrade_required`, naming the upgrade it lacks.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import error_response
from .stream import serve_stream

router = APIRouter(include_in_schema=False)


class _Stream:
    """An ASGI app (not a function, which Starlette would call with a Request)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_stream(scope, receive, send, scope["path_params"]["channel"])


async def _not_upgraded(request: Request) -> Response:
    message = "/ws takes a WebSocket upgrade (GET with Upgrade: websocket)"
    return error_response(426, "upgrade_required", message, {"Upgrade": "websocket"})


# Starlette takes an ASGI app as an endpoint; FastAPI's annotation names only functions.
router.add_route("/api/channels/{channel}/stream", cast(Any, _Stream()), methods=["GET"])
router.add_route("/ws", _not_upgraded, methods=["GET"])
