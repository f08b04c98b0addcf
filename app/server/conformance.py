"""The WebSocket protocol state machine uvicorn's sans-I/O protocol drives, with one RFC 6455
point where the `websockets` library is stricter than the RFC.

RFC 6455 5.4: control frames MAY be injected in the middle of a fragmented message. `websockets`
accepts pings and pongs there, but fails the connection with 1002 ("incomplete fragmented
message") on a close. A close there is an ordinary close: the unfinished message is dropped and
the close is answered with the peer's code (Autobahn|Testsuite case 7.1.5).
"""

from __future__ import annotations

from typing import Any

from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol


class ConformingServerProtocol(ServerProtocol):
    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE and self.current_size is not None:
            self.current_size = None  # the fragmented message is abandoned, not an error
        super().recv_frame(frame)


def conforming(conn: Any) -> None:
    """Make uvicorn's freshly built `ServerProtocol` this subclass (same state, one override)."""
    if type(conn) is ServerProtocol:
        conn.__class__ = ConformingServerProtocol


__all__ = ["ConformingServerProtocol", "conforming"]
