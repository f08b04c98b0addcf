"""Waiting for the deliveries in flight, between and after measured windows."""

from __future__ import annotations

import asyncio
import time

from bench.track import Tracker


async def drain(tracker: Tracker, last: int, timeout: float) -> float | None:
    """Wait until every live subscriber has `..last`; the time it took, or None on timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if tracker.pending(last) == 0:
            return time.monotonic() - t0
        await asyncio.sleep(0.02)
    return None


async def settle(tracker: Tracker, expected: int, timeout: float = 15.0) -> None:
    """Wait until `expected` deliveries have arrived in total, or nothing arrives for 0.5 s."""
    t0 = time.monotonic()
    seen, quiet_since = tracker.delivered, time.monotonic()
    while tracker.delivered < expected and time.monotonic() - t0 < timeout:
        await asyncio.sleep(0.05)
        if tracker.delivered != seen:
            seen, quiet_since = tracker.delivered, time.monotonic()
        elif time.monotonic() - quiet_since > 0.5:
            return
