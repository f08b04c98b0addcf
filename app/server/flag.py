"""A flag with asyncio.Event's interface and no deque until someone waits.

uvicorn's protocols hold asyncio.Events for flow control and for a request's next message: each
carries a deque for its waiters, nearly always empty, for every open connection. The fast
protocols (http.py, websocket.py) swap them for this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol


class Flag:
    """asyncio.Event's `set`, `clear`, `is_set` and `wait`, with no deque until someone waits."""

    __slots__ = ("_waiters", "value")

    def __init__(self) -> None:
        self.value = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self.value

    def set(self) -> None:
        self.value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self.value = False

    async def wait(self) -> None:
        if self.value:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            # Cancelled: leave nothing behind (a set() has already taken the list otherwise).
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)


class Gated(Protocol):
    """What a fan-out hands the server through the `fan_out` extension (a reader's sink, see
    app/bus/direct.py): told at once, and whenever it changes, whether the connection takes
    bytes written straight to its socket, so that a fan-out writing to many sockets reads one
    attribute per socket rather than calling a check."""

    def set_gate(self, is_open: bool) -> None: ...


class FlowGate(Flag):
    """A connection's flow-control flag that also keeps a fan-out's gate: open while the flag
    is set, unless `finished()` says the connection is done. It replaces the `writable` Event of
    a protocol whose class keeps no gate of its own (uvicorn's stock WebSocket protocol,
    adopted: see websocket_adopt.py), whose flow control then keeps the gate up to date."""

    __slots__ = ("finished", "gated")

    def __init__(self, finished: Callable[[], bool]) -> None:
        super().__init__()
        self.finished = finished
        self.gated: Gated | None = None

    def set(self) -> None:
        super().set()
        self.regate()

    def clear(self) -> None:
        super().clear()
        self.regate()

    def regate(self) -> None:
        if self.gated is not None:
            self.gated.set_gate(self.value and not self.finished())


class GatedFlag:
    """A flag of uvicorn's (a protocol's or a request cycle's) that a gate depends on: kept as
    `_<name>`, and every assignment, uvicorn's own included, calls the owner's `regate()`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = "_" + name

    def __get__(self, owner_instance: Any, owner: type | None = None) -> Any:
        return getattr(owner_instance, self.key)

    def __set__(self, owner_instance: Any, value: Any) -> None:
        setattr(owner_instance, self.key, value)
        owner_instance.regate()
