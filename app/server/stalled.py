"""A WebSocket peer that reads nothing: the socket is let go.

uvicorn closes a WebSocket's transport when its keepalive runs out, when the peer leaves the
app's close unanswered, and when the app is done; closing waits for the transport's buffer to
drain. A peer that keeps its TCP connection open and reads nothing never drains it: the socket
and its buffers were held for good, and so was the app's place on the connection caps while it
waited for a `receive` nothing would end. Two ways let it go:

- the keepalive goes on visiting a connection that is closing (it sends no ping then), and a
  transport found closed with bytes still unsent is aborted: its peer has had a ping interval,
  or the close timeout, to take them, and has not;
- with or without pings (plain uvicorn's `--ws-ping-interval 0` has none), a transport whose
  writing stays paused (its buffer over the high-water mark) for `ws_stall_timeout` seconds is
  aborted, closing or not: its peer took too little in that time to lower the buffer at all.
  Told by the transport's pause and resume, so a connection whose peer keeps up costs nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import partial
from typing import Any

from .app_state import find_state
from .sweep import Sweep

STALL_TIMEOUT = 30.0


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


class Stalls:
    """Per app (one per server): the WebSocket connections whose writing is paused, each due to
    be let go `timeout` seconds after it paused, by one sweep a second."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.paused: Sweep[Any] = Sweep(_let_go)

    def pause(self, protocol: Any) -> None:
        if protocol not in self.paused:
            self.paused.add(protocol, self.timeout, protocol.loop)


_by_app: weakref.WeakKeyDictionary[Any, Stalls] = weakref.WeakKeyDictionary()


def stalls_of(protocol: Any) -> Stalls:
    """The stalls of the protocol's app (its `ws_stall_timeout` read once)."""
    app = protocol.app
    stalls = _by_app.get(app)
    if stalls is None:
        settings = find_state(app, "settings")
        timeout = float(getattr(settings, "ws_stall_timeout", STALL_TIMEOUT))
        stalls = _by_app[app] = Stalls(timeout)
    return stalls


def writing_paused(protocol: Any) -> None:
    stalls_of(protocol).pause(protocol)


def writing_resumed(protocol: Any) -> None:
    stalls_of(protocol).paused.discard(protocol)


def watch_stalls(protocol: Any) -> None:
    """For a connection of uvicorn's stock sans-I/O protocol (fourcast's own class does this in
    its methods): its pause, resume and loss are told here too."""
    pause, resume, lost = protocol.pause_writing, protocol.resume_writing, protocol.connection_lost
    protocol.pause_writing = partial(_then, pause, writing_paused, protocol)
    protocol.resume_writing = partial(_then, resume, writing_resumed, protocol)
    protocol.connection_lost = partial(_lost, lost, protocol)
    if not protocol.writable.is_set():
        writing_paused(protocol)  # paused before the app could watch it


def _then(first: Callable[[], None], then: Callable[[Any], None], protocol: Any) -> None:
    first()
    then(protocol)


def _lost(lost: Callable[[Exception | None], None], protocol: Any, exc: Exception | None) -> None:
    lost(exc)
    writing_resumed(protocol)


def _let_go(protocol: Any) -> None:
    if not protocol.disconnected:
        protocol.transport.abort()  # closing would wait for the buffer the peer never reads
