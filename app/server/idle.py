"""Idle keep-alive connections, closed by one sweep a second (app/server/quick.py)."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .quick import QuickHttpToolsProtocol


class IdleConnections:
    """Keep-alive connections waiting for their next request, oldest first, closed by one sweep
    a second once idle for longer than uvicorn's keep-alive timeout, where uvicorn arms and
    cancels a timer per response."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._idle: dict[QuickHttpToolsProtocol, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def add(self, protocol: QuickHttpToolsProtocol) -> None:
        loop = protocol.loop
        self._idle.pop(protocol, None)
        self._idle[protocol] = loop.time()
        if self._sweeper is None:
            self._sweeper = loop.call_later(1.0, self._sweep, loop)

    def discard(self, protocol: QuickHttpToolsProtocol) -> None:
        self._idle.pop(protocol, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = None
        horizon = loop.time() - self.timeout
        idle = self._idle
        while idle:
            protocol, since = next(iter(idle.items()))
            if since > horizon:
                break
            del idle[protocol]
            protocol.timeout_keep_alive_handler()
        if idle:
            self._sweeper = loop.call_later(1.0, self._sweep, loop)


_by_server: weakref.WeakKeyDictionary[Any, IdleConnections] = weakref.WeakKeyDictionary()


def idle_connections(server_state: Any, timeout: float) -> IdleConnections:
    """The one sweep of a server's connections (uvicorn's ServerState is per server)."""
    idle = _by_server.get(server_state)
    if idle is None:
        idle = _by_server[server_state] = IdleConnections(timeout)
    return idle
