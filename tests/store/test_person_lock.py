"""A person's lock (app/store/person_lock.py): one change at a time per person, released however
the change ends, and holding no database connection."""

from __future__ import annotations

import asyncio

import pytest

from app.store.person_lock import PersonLock
from tests.clients import eventually


async def _hold(lock: PersonLock, person: str, held: asyncio.Event) -> None:
    async with lock.hold(person):
        held.set()


async def test_a_persons_changes_wait_for_each_other_and_others_do_not() -> None:
    lock = PersonLock()
    held = asyncio.Event()
    async with lock.hold("ann"):
        waiting = asyncio.create_task(_hold(lock, "ann", held))

        async def second_waits() -> bool:
            return lock._local["ann"][1] == 2

        await eventually(second_waits)
        async with lock.hold("bob"):
            pass  # another person's is free
        assert not held.is_set()
    await asyncio.wait_for(waiting, timeout=30)
    assert held.is_set()
    assert lock._local == {}


async def test_a_change_that_fails_lets_the_lock_go() -> None:
    lock = PersonLock()
    with pytest.raises(RuntimeError):
        async with lock.hold("ann"):
            raise RuntimeError("the change failed")
    async with asyncio.timeout(30), lock.hold("ann"):
        pass
    assert lock._local == {}
