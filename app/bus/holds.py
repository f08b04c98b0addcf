"""Channels kept listened for their pollers, on a backend that delivers only what it listens to
(Redis).

A poll reads; it does not subscribe. On such a backend, without a hold, every poll reads the
backend, and every long poll listens and releases around its wait. Here a polled channel is
listened to once, kept while polls keep coming (and while any is parked), and released `linger`
seconds after the last: meanwhile the backend's reader holds the channel's newest events
(app/bus/redis/tail.py), so polls are answered and parked from a callback, with no round trip and
no task, as on the in-process backend. Bounded by `max_channels` held at once (past it, polls
read the backend).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

LINGER = 15.0
"""Seconds a channel stays listened after its last poll."""


class ListenHolds:
    def __init__(
        self,
        listen: Callable[[str], Awaitable[None]],
        release: Callable[[str], Awaitable[None]],
        parked: Callable[[str], bool],
        *,
        max_channels: int,
        linger: float = LINGER,
    ) -> None:
        self._listen = listen
        self._release = release
        self._parked = parked
        self._max = max_channels
        self._linger = linger
        self._held: dict[str, float] = {}
        """Channel -> loop time of its last poll, for channels listened to."""
        self._starting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._held)

    def ready(self, channel: str) -> bool:
        """True when `channel` is listened to for its pollers (the use is noted); else starts
        listening to it in the background, for the next polls."""
        held = self._held
        loop = asyncio.get_running_loop()
        if channel in held:
            held[channel] = loop.time()
            return True
        if (
            not self.closed
            and channel not in self._starting
            and len(held) + len(self._starting) < self._max
        ):
            self._starting.add(channel)
            self._run(self._hold(channel))
        return False

    def close(self) -> None:
        """Stop holding (the bus stops): nothing is released, the backend stops anyway."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for task in list(self._tasks):
            task.cancel()
        self._held.clear()

    def _run(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hold(self, channel: str) -> None:
        try:
            await self._listen(channel)
        except Exception as exc:
            self._starting.discard(channel)
            log.info("could not listen to %s for its pollers: %s", channel, exc)
            await self._release(channel)  # a listen is counted even when it fails
            return
        except BaseException:
            self._starting.discard(channel)
            raise
        self._starting.discard(channel)
        if self.closed:
            return
        self._held[channel] = asyncio.get_running_loop().time()
        if self._sweeper is None:
            self._arm()

    def _arm(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(self._linger / 2, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for channel, last in list(self._held.items()):
            if now - last >= self._linger and not self._parked(channel):
                del self._held[channel]
                self._run(self._release(channel))
        if self._held:
            self._arm()
