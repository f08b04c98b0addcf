"""Connection deadlines and the socket bound, for fourcast's HTTP protocol (either launch path).

uvicorn's stock protocols wait for a request head forever: a connection that sends nothing, or
trickles a byte of its head now and then, holds a socket and a descriptor until the peer goes,
and enough of them exhaust the descriptors. Here, per server:

- a whole request head must arrive within `http_head_timeout` seconds of the connection being
  made (first request) or of its first byte (later requests on a keep-alive connection), and
  its body within `http_body_timeout` seconds of the head; a sweep (app/server/sweep.py)
  closes the late ones, oldest first, instead of a timer per connection;
- at most `max_open_sockets` connections (HTTP and WebSocket) are open at once, capped below
  the process's descriptor limit; a connection made beyond it closes an idle kept-alive one, or
  else the oldest one still waiting for its head (or its body), or, when none is, is itself
  answered 503 and closed. Busy connections are never
  closed for a newcomer, so `/healthz` keeps answering while idle sockets pile up;
- an answer whose writing has stalled (the client reads nothing: its socket's buffers and the
  transport's are full) may stay so `http_send_timeout` seconds, then the socket is aborted:
  such a client would otherwise hold a socket, a task and the answers' bytes for good.

The protocol calls `Deadlines.of(protocol)` once, `admit` when the connection is made, then
`waiting`/`arrived` around each head, `body_due`/`complete` around a body, `stalled`/`flowing`
when its writing pauses and resumes, `idle` after a response on a kept-alive connection, and
`gone`.
"""

from __future__ import annotations

import weakref
from functools import partial
from typing import Any

from .app_state import find_state
from .descriptors import socket_bound
from .hangups import Hangups
from .refusals import HEAD_TOO_LARGE, PIPELINED, REFUSAL
from .sweep import Sweep

HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
SEND_TIMEOUT = 30.0
MAX_OPEN_SOCKETS = 25_000
MAX_PIPELINED = 32
MAX_HEAD_BYTES = 64 * 1024


class PipelineFull(Exception):
    """Raised from a parser callback: the rest of what the client sent is not parsed."""


class Deadlines:
    """Per uvicorn server: the connections still waiting for a request head, and those whose
    head is in but whose body is still arriving, each oldest first."""

    def __init__(
        self,
        server_state: Any,
        head_timeout: float,
        max_sockets: int,
        body_timeout: float = BODY_TIMEOUT,
        max_pipelined: int = MAX_PIPELINED,
        max_head_bytes: int = MAX_HEAD_BYTES,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        self.connections: set[Any] = server_state.connections
        """uvicorn's own set: every open HTTP and WebSocket connection of the server."""
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self.send_timeout = send_timeout
        self.max_sockets = max_sockets
        self.max_pipelined = max_pipelined
        self.max_head_bytes = max_head_bytes
        self.closed = {
            "head_timeout": 0,
            "body_timeout": 0,
            "evicted": 0,
            "refused": 0,
            "pipelined": 0,
            "head_too_large": 0,
            "peer_gone": 0,
            "send_timeout": 0,
        }
        self.hangups = Hangups(self.closed)
        self._heads: Sweep[Any] = Sweep(partial(self._close, reason="head_timeout"))
        self._bodies: Sweep[Any] = Sweep(self._body_late)
        self._stalled: Sweep[Any] = Sweep(self._abort)
        self._idle: dict[Any, None] = {}
        """Kept-alive connections between requests: the first to go for a newcomer (their
        clients reconnect), as nginx reuses idle keep-alive connections first."""

    @classmethod
    def of(cls, protocol: Any) -> Deadlines:
        deadlines = _by_server.get(protocol.server_state)
        if deadlines is None:
            deadlines = _by_server[protocol.server_state] = cls.for_app(
                protocol.server_state, protocol.app
            )
        return deadlines

    @classmethod
    def for_app(cls, server_state: Any, app: Any) -> Deadlines:
        settings = find_state(app, "settings")
        head = float(getattr(settings, "http_head_timeout", HEAD_TIMEOUT))
        body = float(getattr(settings, "http_body_timeout", BODY_TIMEOUT))
        wanted = int(getattr(settings, "max_open_sockets", MAX_OPEN_SOCKETS))
        pipelined = int(getattr(settings, "http_max_pipelined", MAX_PIPELINED))
        head_bytes = int(getattr(settings, "http_max_head_bytes", MAX_HEAD_BYTES))
        send = float(getattr(settings, "http_send_timeout", SEND_TIMEOUT))
        deadlines = cls(server_state, head, socket_bound(wanted), body, pipelined, head_bytes, send)
        services = find_state(app, "services")
        metrics = getattr(services, "metrics", None)
        if metrics is not None and hasattr(metrics, "watch_sockets"):
            metrics.watch_sockets(lambda: len(deadlines.connections), deadlines.closed)
        return deadlines

    def admit(self, protocol: Any) -> bool:
        """A connection was made (and is already in `connections`): False if it was refused."""
        self.waiting(protocol)
        if len(self.connections) <= self.max_sockets:
            return True
        for queue in (self._idle, self._heads, self._bodies):
            for oldest in queue:
                if oldest is not protocol:
                    self._close(oldest, "evicted")
                    return True
        self._heads.discard(protocol)
        protocol.transport.write(REFUSAL)
        protocol.transport.close()
        self.closed["refused"] += 1
        return False

    def pipelined(self, protocol: Any, waiting: int) -> None:
        """A request head is in with `waiting` requests already queued behind the one being
        answered. uvicorn queues every request of a read it parses (a read is up to 256 KiB:
        thousands of small requests, a few KiB of state each) while their answers go unread;
        past the bound the connection gets a 429 and is closed, and PipelineFull stops the
        parser there."""
        if waiting < self.max_pipelined:
            return
        transport = protocol.transport
        if not transport.is_closing():
            transport.write(PIPELINED)
            transport.close()
            self.closed["pipelined"] += 1
        raise PipelineFull

    def head_too_large(self, protocol: Any) -> None:
        """The head being parsed has grown past `max_head_bytes` (a read more, at most)."""
        self.gone(protocol)
        transport = protocol.transport
        if not transport.is_closing():
            transport.write(HEAD_TOO_LARGE)
            transport.close()
            self.closed["head_too_large"] += 1

    def idle(self, protocol: Any) -> None:
        """A response is complete and the connection is kept alive for the next request."""
        self._idle[protocol] = None

    def waiting(self, protocol: Any) -> None:
        """A request head is due: from now, unless one already is (it keeps its start)."""
        self._idle.pop(protocol, None)
        if protocol not in self._heads:
            self._heads.add(protocol, self.head_timeout, protocol.loop)

    def arrived(self, protocol: Any) -> None:
        """The whole head is in."""
        self._heads.discard(protocol)

    def body_due(self, protocol: Any) -> None:
        """The head announced a body: all of it is due within `body_timeout`."""
        self._bodies.add(protocol, self.body_timeout, protocol.loop)

    def complete(self, protocol: Any) -> None:
        """The whole request is in."""
        self._bodies.discard(protocol)

    def stalled(self, protocol: Any) -> None:
        """Its writing paused (the transport's buffer is full): it must resume in time."""
        if protocol not in self._stalled:
            self._stalled.add(protocol, self.send_timeout, protocol.loop)

    def flowing(self, protocol: Any) -> None:
        self._stalled.discard(protocol)

    def gone(self, protocol: Any) -> None:
        self.hangups.discard(protocol)
        self._idle.pop(protocol, None)
        self._heads.discard(protocol)
        self._bodies.discard(protocol)
        self._stalled.discard(protocol)

    def _body_late(self, protocol: Any) -> None:
        flow = getattr(protocol, "flow", None)
        if flow is not None and flow.read_paused:
            # Queued behind a response still being written (a parked long poll, a stream):
            # the server stopped reading, not the client. Due again once it reads.
            self._bodies.add(protocol, self.body_timeout, protocol.loop)
            return
        self._close(protocol, "body_timeout")

    def _abort(self, protocol: Any) -> None:
        # Aborted, not closed: closing would wait for buffers the client never reads.
        self.gone(protocol)
        protocol.transport.abort()
        self.closed["send_timeout"] += 1

    def _close(self, protocol: Any, reason: str) -> None:
        self.gone(protocol)
        transport = protocol.transport
        if not transport.is_closing():
            transport.close()
            self.closed[reason] += 1


_by_server: weakref.WeakKeyDictionary[Any, Deadlines] = weakref.WeakKeyDictionary()


__all__ = ["HEAD_TIMEOUT", "MAX_OPEN_SOCKETS", "Deadlines", "PipelineFull", "socket_bound"]
