"""Per-subscriber accounting: latency, loss, duplicates and reordering, cheap on the hot path.

Every published event carries `{"seq": n, "sent": ms}` in its `data`. A phase covers the sequence
numbers `first..last`; each subscriber remembers the last seq it saw and, only when a gap opens, the
missing ones, so an in-order delivery costs two comparisons.
"""

from __future__ import annotations

import math

MAX_MISSING = 200_000


class Sub:
    """One subscriber's view of the current phase."""

    __slots__ = ("alive", "dup", "last", "missing", "received", "reorder", "tracker")

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.alive = True
        self.last = tracker.first - 1
        self.missing: set[int] = set()
        self.dup = 0
        self.reorder = 0
        self.received = 0

    def reset(self) -> None:
        self.last = self.tracker.first - 1
        self.missing = set()
        self.dup = 0
        self.reorder = 0
        self.received = 0

    def event(self, seq: int, sent: float, now: float) -> None:
        t = self.tracker
        t.delivered += 1
        if seq < t.first:
            return  # from an earlier phase
        t.latencies.append(now - sent)
        self.received += 1
        last = self.last
        if seq == last + 1:
            self.last = seq
        elif seq > last:
            if len(self.missing) < MAX_MISSING:
                self.missing.update(range(last + 1, seq))
            self.last = seq
        elif seq in self.missing:
            self.missing.discard(seq)
            self.reorder += 1
        else:
            self.dup += 1


class Tracker:
    """All subscribers of one scenario, and the phase they are measured over."""

    def __init__(self) -> None:
        self.subs: list[Sub] = []
        self.first = 1 << 62  # nothing counts until a phase begins
        self.delivered = 0
        self.latencies: list[float] = []
        self.disconnects = 0
        self.resets = 0

    def new_sub(self) -> Sub:
        sub = Sub(self)
        self.subs.append(sub)
        return sub

    def begin(self, first: int) -> None:
        self.first = first
        self.latencies = []
        for sub in self.subs:
            sub.reset()

    def pending(self, last: int) -> int:
        """Deliveries of `first..last` not seen yet by the live subscribers."""
        want = last - self.first + 1
        return sum(max(0, want - (s.received - s.dup)) for s in self.subs if s.alive)

    def summary(self, last: int) -> dict[str, object]:
        """Loss counts every subscriber present at the phase start, live or not."""
        loss = dup = reorder = 0
        for s in self.subs:
            loss += len(s.missing) + max(0, last - s.last)
            dup += s.dup
            reorder += s.reorder
        lat = sorted(self.latencies)
        return {
            "loss": loss,
            "dup": dup,
            "reorder": reorder,
            "samples": len(lat),
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "max_ms": round(lat[-1], 2) if lat else None,
        }


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return round(values[rank - 1], 2)
