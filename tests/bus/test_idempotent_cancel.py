"""An idempotent publish whose caller leaves while the event is being kept: its retry is a replay."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.bus import Bus
from app.bus.backend import Draft
from app.bus.events import Event
from tests.bus.conftest import MakeBus
from tests.bus.helpers import SENDER


class HeldAppend:
    """The backend's first append waits at a gate (as a slow journal or a slow Redis would)."""

    def __init__(self, bus: Bus) -> None:
        self.gate = asyncio.Event()
        self.reached = asyncio.Event()
        self._append = bus.backend.append
        bus.backend.append = self._held  # type: ignore[method-assign]

    async def _held(self, drafts: Sequence[Draft]) -> list[Event]:
        if not self.reached.is_set():
            self.reached.set()
            await self.gate.wait()
        return await self._append(drafts)


async def test_a_retry_after_the_caller_left_mid_keep_is_a_replay(make_bus: MakeBus) -> None:
    bus = await make_bus()
    held = HeldAppend(bus)
    channel = "public:idempotent-cancel"
    first = asyncio.create_task(bus.publish(channel, "t", b"{}", SENDER, idempotency_key="k1"))
    await held.reached.wait()  # the event is on its way into the log
    first.cancel()  # its client left: no answer for it
    with pytest.raises(asyncio.CancelledError):
        await first
    retry = asyncio.create_task(bus.publish(channel, "t", b"{}", SENDER, idempotency_key="k1"))
    held.gate.set()
    event, new = await retry
    assert not new, "the retry published the event a second time"
    page = await bus.read(channel, 0, 10)
    assert [e.seq for e in page.events] == [event.seq]
