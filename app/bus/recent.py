"""The recent ephemeral events a node keeps so that polling readers see them too: they have no
connection to receive them on, so each poll asks for those accepted since it last read.

Kept: the last `KEEP` per channel, each for `WINDOW_MS`, and `max_bytes` of them in all. The
last bound is the one a client meets: ephemeral events are up to `max_event_bytes` each, and one
spreading them over many channels would otherwise make the node hold `KEEP` of them per channel.
"""

from __future__ import annotations

from collections import deque

from .events import Event, now_ms

KEEP = 64
WINDOW_MS = 10_000.0


class RecentEphemeral:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._by_channel: dict[str, deque[Event]] = {}
        self._newest: dict[str, float] = {}
        """The newest `ts` among each channel's events (other nodes' clocks: not always the last
        one's), so a poll finds "none since" without looking at each."""
        self._order: deque[tuple[Event, float]] = deque()
        """Every event held, oldest first, with when it came (this node's clock): what leaves
        first, for its age or for the bytes bound."""
        self.bytes = 0
        """Bytes of the events held (`fourcast_ephemeral_bytes`)."""
        self.dropped = 0
        """Events let go before their window ended, for `max_bytes`: pollers miss them."""

    def since(self, channel: str, since_ms: float) -> list[Event]:
        newest = self._newest.get(channel)
        if newest is None or newest <= since_ms:
            return []  # every poll asks: the usual answer is kept cheap
        horizon = max(since_ms, now_ms() - WINDOW_MS)
        return [e for e in self._by_channel[channel] if e.ts > horizon]

    def add(self, event: Event) -> None:
        channel = event.channel
        recent = self._by_channel.get(channel)
        if recent is None:
            recent = self._by_channel[channel] = deque()
        recent.append(event)
        if len(recent) > KEEP:
            recent.popleft()  # still held in `_order` (and counted) until it leaves there
        newest = self._newest
        newest[channel] = max(event.ts, newest.get(channel, event.ts))
        arrived = now_ms()
        self._order.append((event, arrived))
        self.bytes += len(event.json)
        self._trim(arrived - WINDOW_MS)

    def _trim(self, horizon: float) -> None:
        """Let the oldest go while they are past the window, or over the bytes bound (the
        newest always stays: one event is at most `max_event_bytes`)."""
        order = self._order
        while order and (
            order[0][1] < horizon or (self.bytes > self._max_bytes and len(order) > 1)
        ):
            event, arrived = order.popleft()
            self.bytes -= len(event.json)
            if arrived >= horizon:
                self.dropped += 1
            channel = event.channel
            recent = self._by_channel.get(channel)
            if recent is None:
                continue
            if recent and recent[0] is event:
                recent.popleft()
            if not recent:
                del self._by_channel[channel], self._newest[channel]
