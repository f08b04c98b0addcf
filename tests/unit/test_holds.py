"""Polled channels kept listened (app/bus/holds.py): held while polled or parked, released after
the linger, bounded, and a failed listen leaves nothing held."""

from __future__ import annotations

import pytest

from app.bus.holds import ListenHolds
from tests.bus.helpers import wait_until


class Listener:
    def __init__(self, fail: bool = False) -> None:
        self.counts: dict[str, int] = {}
        self.fail = fail
        self.parked: set[str] = set()
        self.asked: dict[str, int] = {}

    async def listen(self, channel: str) -> None:
        self.counts[channel] = self.counts.get(channel, 0) + 1  # counted even when it fails
        if self.fail:
            raise ConnectionError("redis is down")

    async def release(self, channel: str) -> None:
        self.counts[channel] -= 1

    def is_parked(self, channel: str) -> bool:
        self.asked[channel] = self.asked.get(channel, 0) + 1
        return channel in self.parked

    def holds(self, *, max_channels: int = 10, linger: float = 0.02) -> ListenHolds:
        return ListenHolds(
            self.listen, self.release, self.is_parked, max_channels=max_channels, linger=linger
        )


async def test_a_polled_channel_is_listened_once_then_released_after_its_last_poll() -> None:
    listener = Listener()
    holds = listener.holds()
    assert not holds.ready("a")  # listening starts in the background
    assert not holds.ready("a")
    await wait_until(lambda: holds.ready("a"))
    assert listener.counts == {"a": 1} and len(holds) == 1
    await wait_until(lambda: listener.counts["a"] == 0)  # no poll since: released
    assert len(holds) == 0
    holds.close()


async def test_a_channel_with_a_parked_poll_stays_listened() -> None:
    listener = Listener()
    listener.parked.add("a")
    holds = listener.holds()
    holds.ready("a")
    await wait_until(lambda: len(holds) == 1)
    await wait_until(lambda: listener.asked.get("a", 0) >= 3)  # several sweeps past the linger
    assert listener.counts == {"a": 1} and len(holds) == 1
    listener.parked.clear()
    await wait_until(lambda: listener.counts["a"] == 0)
    holds.close()


@pytest.mark.parametrize("fail", [False, True])
async def test_bounded_and_a_failed_listen_is_released(fail: bool) -> None:
    listener = Listener(fail=fail)
    holds = listener.holds(max_channels=1, linger=3600)
    holds.ready("a")
    holds.ready("b")  # over the bound: polls of b read the backend
    await wait_until(lambda: listener.counts.get("a") == (0 if fail else 1))
    assert "b" not in listener.counts
    assert holds.ready("a") is not fail
    holds.close()
    assert len(holds) == 0 and not holds.ready("c")
