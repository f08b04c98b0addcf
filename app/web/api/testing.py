"""`/testing/echo`: a WebSocket that sends every message back, for Autobahn|Testsuite.

Mounted only with `FOURCAST_TESTING_ECHO=1` (see app/main.py): it runs on the same server
protocols as `/ws`, so the conformance suite exercises the stack `/ws` is served by, while the
echo itself holds no state and publishes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.websockets import WebSocket

router = APIRouter(tags=["testing"], include_in_schema=False)


@router.websocket("/testing/echo")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect: the protocol has answered the close itself
        if message.get("text") is not None:
            await websocket.send({"type": "websocket.send", "text": message["text"]})
        else:
            await websocket.send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


__all__ = ["echo", "router"]
