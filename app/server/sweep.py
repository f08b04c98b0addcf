"""Per-connection deadlines met by one timer a second for the whole server, where uvicorn arms a
timer per connection (a timer handle, its callback and its arguments for every idle socket).

Each sweep fires at most `BATCH` items per loop turn. Two sweeps use it: idle keep-alive connections are closed (app/server/quick.py), and WebSocket
keepalive pings are sent (app/server/websocket.py).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
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

    def add(self, item: T, delay: float) -> None:
        # While the sweeper is armed, its loop is the running one: asking asyncio for it costs
        # a getpid() system call on Python 3.11, and this runs for every response.
        loop = self._loop
        if self._sweeper is None or loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(TICK, self._sweep, loop)
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
            if due and self._sweeper is None:
                self._sweeper = again(loop, fired, self._sweep)


def again(
    loop: asyncio.AbstractEventLoop, fired: int, sweep: Callable[[asyncio.AbstractEventLoop], None]
) -> asyncio.Handle:
    """The next sweep: on the next loop turn if this one stopped at `BATCH`, else in a `TICK`."""
    if fired >= BATCH:
        return loop.call_soon(sweep, loop)
    return loop.call_later(TICK, sweep, loop)


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
