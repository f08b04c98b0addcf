"""Long polls that wait with no task of their own: the one place a long poll waits.

A waiting long poll needs only to be answered when its channel's next event arrives, or when its
wait is over. Parked here, the polls of a channel share one callback on the hub's wake-up future,
and one sweep a quarter of a second times out all of them, rather than a task, a wait set and a
timer each. What the answer is, is decided by the caller's `answer` (app/bus/polls.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from .hub import Hub

Answer = Callable[[Any], None]
"""Given a parked poll's answer once (a PollResult, or None when the backend failed to read)."""

SWEEP_INTERVAL = 0.25
"""How late a timed-out poll may be answered, at most."""


class ParkedPoll:
    __slots__ = ("after", "channel", "deadline", "done", "limit", "marker")

    def __init__(
        self,
        channel: str,
        after: int,
        marker: float,
        limit: int,
        deadline: float,
        done: Answer,
    ) -> None:
        self.channel = channel
        self.after = after
        self.marker = marker
        self.limit = limit
        self.deadline = deadline
        self.done = done
        """Given the answer, once."""


class PollParking:
    def __init__(self, hub: Hub, answer: Callable[[list[ParkedPoll]], None]) -> None:
        self._hub = hub
        self._answer = answer
        self._by_channel: dict[str, dict[ParkedPoll, None]] = {}
        self._wakeups: dict[str, tuple[asyncio.Future[None], Callable[..., None]]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop `_sweeper` was last armed on."""

    def __len__(self) -> int:
        return sum(len(polls) for polls in self._by_channel.values())

    def holds(self, channel: str) -> bool:
        """True while a poll of `channel` is parked."""
        return channel in self._by_channel

    def time(self) -> float:
        """The running loop's time. While the sweeper is armed, that is its loop's: asking
        asyncio for the running loop costs a getpid() system call on Python 3.11, and this runs
        for every poll parked."""
        loop = self._loop
        if self._sweeper is None or loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.time()

    def park(self, poll: ParkedPoll) -> None:
        channel = poll.channel
        polls = self._by_channel.get(channel)
        if polls is None:
            polls = self._by_channel[channel] = {}
            self._hub.acquire(channel)  # dispatch wakes only channels with a local listener
            future = self._hub.wakeup(channel)
            callback = partial(self._woken, channel)
            future.add_done_callback(callback)
            self._wakeups[channel] = (future, callback)
        polls[poll] = None
        if self._sweeper is None:
            self._loop = loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(SWEEP_INTERVAL, self._sweep)

    def cancel(self, poll: ParkedPoll) -> None:
        """Its reader went away: forget it, answer nobody."""
        polls = self._by_channel.get(poll.channel)
        if polls is None or poll not in polls:
            return  # already answered
        del polls[poll]
        if not polls:
            self._unpark_channel(poll.channel)

    def end(self, select: Callable[[ParkedPoll], bool]) -> None:
        """Answer now, as if their wait had ended, the parked polls `select` picks (the polls of
        a person just signed out). Walks every parked poll: for a rare event, so no poll pays
        for being findable."""
        for channel, polls in list(self._by_channel.items()):
            picked = [poll for poll in polls if select(poll)]
            if not picked:
                continue
            for poll in picked:
                del polls[poll]
            if not polls:
                self._unpark_channel(channel)
            self._answer(picked)

    def _woken(self, channel: str, _future: asyncio.Future[None]) -> None:
        polls = self._by_channel.pop(channel, None)
        self._wakeups.pop(channel, None)
        if polls is None:
            return
        self._hub.release(channel)
        self._answer(list(polls))  # together: most of them read the same events

    def _unpark_channel(self, channel: str) -> None:
        del self._by_channel[channel]
        future, callback = self._wakeups.pop(channel)
        # A quiet channel's wake-up future outlives many polls: leave no callback behind on it.
        future.remove_done_callback(callback)
        self._hub.release(channel)

    def _sweep(self) -> None:
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        try:
            for channel, polls in list(self._by_channel.items()):
                expired = [poll for poll in polls if poll.deadline <= now]
                for poll in expired:
                    del polls[poll]
                if not polls:
                    self._unpark_channel(channel)
                if expired:
                    self._answer(expired)
        finally:
            # Re-armed whatever happened above: a poll left parked must still time out.
            if self._by_channel and self._sweeper is None:
                self._loop = loop
                self._sweeper = loop.call_later(SWEEP_INTERVAL, self._sweep)
