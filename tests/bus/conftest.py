"""The bus fixtures: one `make_bus` factory, parametrised over every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from app.bus import Bus, Journal, NullJournal, create_bus
from app.settings import Settings

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]

MakeBus = Callable[..., Awaitable[Bus]]


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bus_redis_url(backend_name: str, request: pytest.FixtureRequest) -> str:
    """The Redis URL for the redis backend ("" for the in-process one)."""
    if backend_name == "redis":
        return str(request.getfixturevalue("redis_url"))
    return ""


@pytest.fixture
async def make_bus(bus_redis_url: str) -> AsyncIterator[MakeBus]:
    """Build and start buses (several on Redis are several nodes); all stopped after the test."""
    buses: list[Bus] = []

    async def factory(journal: Journal | None = None, **overrides: Any) -> Bus:
        settings = Settings(
            redis_url=bus_redis_url, database_url="", secret_key="s" * 48, **overrides
        )
        bus = create_bus(settings, journal or NullJournal())
        await bus.start()
        buses.append(bus)
        return bus

    yield factory
    for bus in buses:
        await asyncio.wait_for(bus.stop(), 10)


@pytest.fixture
async def bus(make_bus: MakeBus) -> Bus:
    return await make_bus()


redis_only = pytest.mark.parametrize(
    "backend_name", [pytest.param("redis", marks=pytest.mark.redis)], indirect=True
)
"""Run a module's tests on the Redis backend only (several nodes, faults)."""
