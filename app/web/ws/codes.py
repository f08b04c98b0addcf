"""Wire constants of `/ws`: the subprotocol names and the close codes of docs/protocol.md."""

from __future__ import annotations

SUBPROTOCOL = "fourcast.v1"
BEARER_PREFIX = "fourcast.bearer."

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_ERROR = 1011
CLOSE_RESTART = 1012
CLOSE_SLOW = 4008
CLOSE_EXPIRED = 4401
CLOSE_FORBIDDEN = 4403


class CloseConnection(Exception):
    """Raised inside a connection's handlers to end it with a close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
