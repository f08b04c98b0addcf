"""Per-connection deadlines met by one timer a second for the whole server, where uvicorn arms a
timer per connection (a timer handle, its callback and its arguments for every idle socket).

Each sweep fires at most `BATCH` items per loop turn. Sweeps close idle keep-alive connections
(app/server/quick.py) and connections late with a request head or body (app/server/deadlines.py),
ask about the peers of paused connections (app/server/hangups.py), send WebSocket keepalive
pings (app/server/websocket.py) and wake SSE streams for a keepalive.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

TICK = 1.0
"""Seconds between sweeps: the resolution of every deadline kept here."""
BATCH = 64
"""Items one loop turn fires at most. Items come due together (a thousand sockets opened in
the same second); firing them over many turns serves every other connection in between."""


class Sweep(Generic[T]):
    """Items each due at a time, handed to `fire` by one sweep a second.

    Items are kept in the order they were last added: with one delay for all (a keep-alive
    timeout, a ping interval) that is due order, so a sweep stops at the first item not yet due.
    An item added with a shorter delay than those before it is fired up to that much late."""

    def __init__(self, fire: Callable[[T], None]) -> None:
        self._fire = fire
        self._due: dict[T, float] = {}
        self._sweeper: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop `_sweeper` was last armed on."""

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, item: object) -> bool:
        return item in self._due

    def __iter__(self) -> Iterator[T]:
        """The items, first due first."""
        return iter(self._due)

    def add(self, item: T, delay: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """`item` due in `delay` seconds, on `loop` (default: the running one)."""
        # While the sweeper is armed, its loop is the running one: asking asyncio for it costs
        # a getpid() system call on Python 3.11, and this runs for every response.
        if self._sweeper is None or self._loop is None:
            self._loop = loop or asyncio.get_running_loop()
            self._sweeper = self._loop.call_later(TICK, self._sweep, self._loop)
        loop = self._loop
        self._due.pop(item, None)
        self._due[item] = loop.time() + delay

    def discard(self, item: T) -> None:
        self._due.pop(item, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = None
        now = loop.time()
        due = self._due
        fired = 0
        try:
            while due and fired < BATCH:
                item, at = next(iter(due.items()))
                if at > now:
                    break
                del due[item]
                fired += 1
                self._fire(item)
        finally:
            # Re-armed whatever `fire` did: the items left must still come due.
            # The next sweep: on the next loop turn if this one stopped at BATCH (also when
            # `fire` added an item again, which armed a sweep a TICK away), else a TICK on.
            if due and fired >= BATCH:
                self._sweep_next_turn(loop)
            elif due and self._sweeper is None:
                self._sweeper = loop.call_later(TICK, self._sweep, loop)

    def _sweep_next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sweeper is not None:  # armed by `fire` adding an item: a TICK away
            self._sweeper.cancel()
        self._sweeper = loop.call_soon(self._sweep, loop)


_by_server: weakref.WeakKeyDictionary[Any, dict[str, Sweep[Any]]] = weakref.WeakKeyDictionary()


def server_sweep(server_state: Any, name: str, fire: Callable[[T], None]) -> Sweep[T]:
    """The server's one sweep called `name` (uvicorn's ServerState is per server)."""
    sweeps = _by_server.get(server_state)
    if sweeps is None:
        sweeps = _by_server[server_state] = {}
    sweep = sweeps.get(name)
    if sweep is None:
        sweep = sweeps[name] = Sweep(fire)
    return sweep
