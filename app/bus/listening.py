"""Which channels the backend listens to for this node, counted per local reader.

Subscriptions, long polls and held channels (holds.py) each count as a listener of their channel
(the count is the hub's): the first asks the backend to listen and the last stops it, so a node
never holds a backend subscription per client.
"""

from __future__ import annotations

import asyncio

from .backend import Backend, BusUnavailable
from .hub import Hub


class Listening:
    def __init__(self, hub: Hub, backend: Backend) -> None:
        self._hub = hub
        self._backend = backend
        self._pending: dict[str, asyncio.Future[None]] = {}
        """Channel -> the request to the backend to listen, while it is on its way."""
        self._listened: set[str] = set()
        """Channels the backend listens to for this node (until their last listener leaves)."""

    async def listen(self, channel: str) -> None:
        """Count a local listener (the caller releases it, also on error) and return once the
        backend listens to its channel: reading history before that would leave a gap between
        what is read and what arrives live. One listener asks the backend, the others wait for
        it; if it leaves meanwhile (cancelled), the next one asks instead."""
        self._hub.acquire(channel)
        while channel not in self._listened:
            pending = self._pending.get(channel)
            if pending is not None:
                await asyncio.wait({pending})
                if not pending.cancelled() and pending.exception() is not None:
                    raise BusUnavailable(f"could not listen to {channel}")
                continue
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._pending[channel] = future
            try:
                await self._backend.listen(channel)
            except asyncio.CancelledError:
                future.cancel()  # its asker left: a waiting listener asks again
                raise
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # read here: waiters that left meanwhile never read it
                raise
            finally:
                del self._pending[channel]
            self._listened.add(channel)
            future.set_result(None)

    async def release(self, channel: str) -> None:
        """Drop a local listener counted by `listen`; the last one stops the backend's."""
        if self._hub.release(channel):
            self._listened.discard(channel)
            await self._backend.unlisten(channel)
