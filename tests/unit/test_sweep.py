"""app/server/sweep.py on a real event loop: items due together fire a batch per loop turn."""

from __future__ import annotations

import asyncio

from app.server.sweep import BATCH, Sweep


async def test_items_due_together_fire_a_batch_per_loop_turn() -> None:
    fired: list[int] = []
    sweep: Sweep[int] = Sweep(fired.append)
    for item in range(2 * BATCH + 5):
        sweep.add(item, 0)  # due at once
    loop = asyncio.get_running_loop()
    armed = sweep._sweeper
    assert armed is not None
    armed.cancel()  # sweep now rather than in a TICK
    sweep._sweep(loop)
    counts = [len(fired)]
    while len(sweep):
        await asyncio.sleep(0)  # one loop turn: the sweep queued with call_soon runs first
        counts.append(len(fired))
    assert counts == [BATCH, 2 * BATCH, 2 * BATCH + 5]
    assert fired == list(range(2 * BATCH + 5))  # in due order
    if sweep._sweeper is not None:
        sweep._sweeper.cancel()


async def test_a_sweep_that_fires_fewer_than_a_batch_waits_a_tick() -> None:
    fired: list[int] = []
    sweep: Sweep[int] = Sweep(fired.append)
    sweep.add(1, 0)
    sweep.add(2, 3600)  # not due for an hour
    loop = asyncio.get_running_loop()
    assert sweep._sweeper is not None
    sweep._sweeper.cancel()
    sweep._sweep(loop)
    assert fired == [1]
    assert isinstance(sweep._sweeper, asyncio.TimerHandle)  # the next sweep is a TICK away
    sweep._sweeper.cancel()


async def test_items_fire_adds_again_still_fire_a_batch_per_loop_turn() -> None:
    """A `fire` that adds its item back (a check repeated every TICK, a ping interval) arms a
    sweep a TICK away: the items still due must not wait for it."""
    fired: list[int] = []
    sweep: Sweep[int] = Sweep(lambda item: (fired.append(item), sweep.add(item, 3600)))
    for item in range(2 * BATCH + 5):
        sweep.add(item, 0)
    loop = asyncio.get_running_loop()
    armed = sweep._sweeper
    assert armed is not None
    armed.cancel()
    sweep._sweep(loop)
    counts = [len(fired)]
    while len(fired) < 2 * BATCH + 5 and len(counts) < 10:
        await asyncio.sleep(0)
        counts.append(len(fired))
    assert counts == [BATCH, 2 * BATCH, 2 * BATCH + 5]
    assert len(sweep) == 2 * BATCH + 5  # every item added back, due in an hour
    assert isinstance(sweep._sweeper, asyncio.TimerHandle)
    sweep._sweeper.cancel()
