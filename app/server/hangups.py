"""Clients gone from a connection whose reading is paused behind an unfinished response.

uvicorn pauses reading a connection while a request pipelined behind the one being answered
waits its turn. A parked long poll (or a stream) ahead of it then never reads its client's
goodbye: the end of the stream sits unread in the kernel, and the poll holds its place on the
connection caps, and the socket, until its wait ends. Reading on would let the client queue
more in memory instead; so while such a connection is paused, a sweep asks the kernel once a
second whether its peer has closed or reset it (`TCP_INFO`, Linux), and closes it if so, which
tells the response ahead as any lost connection does (app/server/http.py). Elsewhere (no
`TCP_INFO`, or a Unix socket) the response ahead waits for its own end, as under uvicorn.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from .sweep import TICK, Sweep

TCP_ESTABLISHED = 1
"""`tcpi_state`, the first byte of `TCP_INFO`: any other state of a socket this server has not
closed means the peer has sent its FIN (CLOSE_WAIT) or reset the connection (CLOSE)."""
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
"""Linux's: other systems that have `TCP_INFO` (FreeBSD) number the states differently."""


class Hangups:
    """Paused connections with a response ahead, each asked about its peer once a second."""

    def __init__(self, closed: dict[str, int]) -> None:
        self._closed = closed
        """The server's count of connections closed early, by reason (`peer_gone` here)."""
        self._watched: Sweep[Any] = Sweep(self._check)

    def watch(self, protocol: Any) -> None:
        """`protocol` has paused reading with a response still ahead of the request it read."""
        if _TCP_INFO is not None and protocol not in self._watched:
            self._watched.add(protocol, TICK, protocol.loop)

    def discard(self, protocol: Any) -> None:
        self._watched.discard(protocol)

    def _check(self, protocol: Any) -> None:
        transport = protocol.transport
        if transport.is_closing() or not protocol.flow.read_paused:
            return  # gone already, or reading again: its own reads will see the end
        if protocol.response_ahead() is None:
            return  # answered: the pipelined request is served next, reading resumes
        if peer_gone(transport):
            transport.close()
            self._closed["peer_gone"] += 1
        else:
            self._watched.add(protocol, TICK, protocol.loop)


def peer_gone(transport: Any) -> bool:
    """True when the kernel says the other end of this TCP connection has closed or reset it."""
    sock = transport.get_extra_info("socket")
    if sock is None or _TCP_INFO is None:
        return False
    try:
        state = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 8)[0]
    except OSError:  # not TCP (a Unix socket), or already gone from under us
        return False
    return bool(state != TCP_ESTABLISHED)


__all__ = ["Hangups", "peer_gone"]
