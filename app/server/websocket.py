"""uvicorn's sans-I/O WebSocket protocol, plus one ASGI extension: `fourcast.frames`.

Without compression, the frame a server sends for an event is the same bytes for every client
(server frames are not masked). The extension lets the app hand over such pre-built frames, many
at once (awaited like any send, or written at once from a callback when the socket is not
paused), so fanning an event out to N connections costs N buffer writes instead of N trips through
ASGI, UTF-8 encoding and framing. The app uses it only when a connection's scope advertises it,
so under any other server it falls back to ordinary `websocket.send` messages.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

EXTENSION = "fourcast.frames"
MESSAGE = "fourcast.frames"


class FramesWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The app task is created but has not run yet; it sees the extension from the start.
        if not self.config.ws_per_message_deflate:
            self.scope["extensions"][EXTENSION] = {"write": self.write_now}

    def write_now(self, frames: bytes) -> bool:
        """Write pre-built frames at once if the socket takes them without waiting; False tells
        the app to use the awaited `fourcast.frames` message instead."""
        if (
            not self.writable.is_set()
            or self.disconnected
            or not self.handshake_complete
            or self.close_sent
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frames)
        return True

    async def send(self, message: Any) -> None:
        if message["type"] != MESSAGE:
            await super().send(message)
            if message["type"] == "websocket.accept" and self.handshake_complete:
                # The handshake's request and response (and their headers) are not needed
                # again; an idle connection should not carry them for its whole life.
                self.request = self.response = None  # type: ignore[assignment]
            return
        await self.writable.wait()  # the same flow control as every other send
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete or self.close_sent or self.transport.is_closing():
            raise RuntimeError("fourcast.frames sent outside an open WebSocket")
        self.transport.write(message["frames"])
