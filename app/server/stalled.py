"""A WebSocket peer that reads nothing while the server closes on it: the socket is let go.

uvicorn closes a WebSocket's transport when its keepalive runs out, when the peer leaves the
app's close unanswered, and when the app is done; closing waits for the transport's buffer to
drain. A peer that keeps its TCP connection open and reads nothing never drains it: the socket
and its buffers were held for good, and so was the app's place on the connection caps while it
waited for a `receive` nothing would end. So the keepalive goes on visiting a connection that is
closing (it sends no ping then), and a transport found closed with bytes still unsent is aborted:
its peer has had a ping interval, or the close timeout, to take them, and has not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def keepalive_ping(protocol: Any, ping: Callable[[], None]) -> None:
    """The keepalive's turn: uvicorn's ping (`ping`) while the connection is open."""
    if protocol.close_sent or protocol.transport.is_closing():
        let_go_if_stalled(protocol)
    else:
        ping()


def keepalive_timeout(protocol: Any, timeout: Callable[[], None]) -> None:
    """The pong is late: uvicorn's close (`timeout`), made to end."""
    timeout()
    let_go_if_stalled(protocol)


def let_go_if_stalled(protocol: Any) -> None:
    if protocol.disconnected:
        return
    transport = protocol.transport
    if not transport.is_closing():
        protocol.schedule_ping()  # a closing handshake under way: looked at again next turn
    elif transport.get_write_buffer_size():
        transport.abort()
