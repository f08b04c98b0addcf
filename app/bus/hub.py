"""Local fan-out on this node: who listens to which channel, and the recent live-only events.

The hub knows nothing of transports: it hands events to sinks (bounded queues owned by connections)
and wakes parked polls. It asks the backend to listen to a channel for its first local
listener and to stop after its last, so a node never holds a backend subscription per client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from .events import Event
from .fanout import fan_out
from .recent import RecentEphemeral
from .sink import Sink

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class Subscription:
    channel: str
    sink: Sink
    last_seq: int = 0
    catching_up: bool = True
    pending: list[Event] = field(default_factory=list)
    pending_lost: bool = False
    max_pending: int = 1000

    def offer(self, events: Sequence[Event]) -> None:
        """Events of this channel in cursor order; those already delivered are skipped."""
        if self.catching_up:
            room = self.max_pending - len(self.pending)
            self.pending.extend(events[:room])
            if len(events) > room:
                # Durable ones will be re-read from the backend; nothing is silently skipped.
                self.pending_lost = True
            return
        if len(events) == 1:  # the fan-out's common case: no list of its own
            seq = events[0].seq
            if seq is None or seq > self.last_seq:
                if seq is not None:
                    self.last_seq = seq
                self.sink.push_many(events)
            return
        fresh = []
        last = self.last_seq
        for event in events:
            seq = event.seq
            if seq is None:
                fresh.append(event)
            elif seq > last:
                last = seq
                fresh.append(event)
        self.last_seq = last
        if fresh:
            self.sink.push_many(fresh)

    def hold(self) -> None:
        """Deliver nothing for now, keeping what arrives as a catch-up does: a subscription being
        replaced (a WebSocket re-subscribe), kept if its replacement is refused."""
        self.catching_up = True

    def resume(self) -> bool:
        """Deliver what was held and go on live; False (still held) when some was lost (more
        than `max_pending`, or the log restarted): going on would skip it."""
        if self.pending_lost:
            return False
        self.catching_up = False
        self.offer(self.pending)
        self.pending.clear()
        return True


class Hub:
    def __init__(self, max_ephemeral_bytes: int = 16 << 20) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._wakeups: dict[str, asyncio.Future[None]] = {}
        self._listeners: dict[str, int] = {}
        self.ephemeral = RecentEphemeral(max_ephemeral_bytes)

    # Listener reference counts decide when the backend listens to a channel.
    def acquire(self, channel: str) -> bool:
        """Count a local listener; True when it is the first."""
        count = self._listeners.get(channel, 0)
        self._listeners[channel] = count + 1
        return count == 0

    def release(self, channel: str) -> bool:
        """Drop a local listener; True when it was the last."""
        count = self._listeners.get(channel, 0) - 1
        if count > 0:
            self._listeners[channel] = count
            return False
        self._listeners.pop(channel, None)
        self._wakeups.pop(channel, None)  # nobody can be waiting on it any more
        return True

    def add(self, subscription: Subscription) -> None:
        self._subscriptions.setdefault(subscription.channel, set()).add(subscription)

    def remove(self, subscription: Subscription) -> None:
        subs = self._subscriptions.get(subscription.channel)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._subscriptions[subscription.channel]

    def wakeup(self, channel: str) -> asyncio.Future[None]:
        """A future every parked poll on `channel` shares, resolved by the next event."""
        future = self._wakeups.get(channel)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._wakeups[channel] = future
        return future

    def subscriber_count(self, channel: str | None = None) -> int:
        if channel is not None:
            return len(self._subscriptions.get(channel, ()))
        return sum(len(s) for s in self._subscriptions.values())

    def recent_ephemeral(self, channel: str, since_ms: float) -> list[Event]:
        return self.ephemeral.since(channel, since_ms)

    def dispatch(self, events: Sequence[Event]) -> None:
        """Hand events (in cursor order per channel) to every local listener. Never awaits."""
        by_channel: dict[str, list[Event]] = {}
        for event in events:
            if event.seq is None:
                self.ephemeral.add(event)
            if event.channel in self._listeners:
                by_channel.setdefault(event.channel, []).append(event)
        # One offer per subscription per batch: a reader gets the whole batch in one write.
        for channel, batch in by_channel.items():
            subs = self._subscriptions.get(channel)
            if not subs:
                continue
            if len(batch) == 1 and batch[0].seq is not None:
                fan_out(subs, batch, _offer)
            else:
                for sub in subs:
                    _offer(sub, batch)
        for channel in by_channel:
            future = self._wakeups.pop(channel, None)
            if future is not None and not future.done():
                future.set_result(None)

    def restart(self, channel: str, after: int) -> None:
        """The channel's log continues in a new epoch (Redis lost data): each subscriber gets a
        reset, then the events after `after`, whatever cursors it had before."""
        for sub in self._subscriptions.get(channel, ()):
            if sub.catching_up:
                sub.pending_lost = True  # the catch-up reads again, and meets the reset itself
                continue
            sub.sink.push_reset(channel, after)
            sub.last_seq = after

    def close_all(self) -> None:
        """Wake every writer and parked poll so connections can end (shutdown)."""
        for subs in self._subscriptions.values():
            for sub in subs:
                sub.sink.close()
        for future in self._wakeups.values():
            if not future.done():
                future.set_result(None)
        self._wakeups.clear()


def _offer(sub: Subscription, batch: list[Event]) -> None:
    try:
        sub.offer(batch)
    except Exception:
        # One reader's failing socket must not cost the others their events.
        log.exception("delivery to one subscriber failed; closing it")
        sub.sink.close()
