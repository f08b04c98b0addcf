"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.bus import Bus, NullJournal, create_bus
from app.settings import Settings


@pytest.fixture
async def bus() -> AsyncIterator[Bus]:
    """A started in-process bus (a test module may override it, e.g. with other backends)."""
    bus = create_bus(Settings(), NullJournal())
    await bus.start()
    yield bus
    await bus.stop()
