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
        """Channel -> the first listener's request to the backend, while it is on its way."""

    async def listen(self, channel: str) -> None:
        """Count a local listener (the caller releases it, also on error); the first one asks the
        backend to listen, and the others wait for that: reading history before the backend
        listens would leave a gap between what they read and what arrives live."""
        if not self._hub.acquire(channel):
            pending = self._pending.get(channel)
            if pending is not None:
                await asyncio.wait({pending})
                if pending.cancelled():
                    raise BusUnavailable(f"could not listen to {channel}")
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[channel] = future
        try:
            await self._backend.listen(channel)
            future.set_result(None)
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._pending[channel]

    async def release(self, channel: str) -> None:
        """Drop a local listener counted by `listen`; the last one stops the backend's."""
        if self._hub.release(channel):
            await self._backend.unlisten(channel)
