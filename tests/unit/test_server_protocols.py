"""The small stand-ins the WebSocket protocol uses for asyncio.Queue and asyncio.Event."""

from __future__ import annotations

import asyncio

from app.server.websocket import Flag, ReceiveQueue


async def test_receive_queue_is_first_in_first_out_and_wakes_a_waiting_get() -> None:
    queue = ReceiveQueue()
    assert queue.empty()
    getting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getting.done()
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert await getting == "a"
    assert queue.qsize() == 1 and await queue.get() == "b" and queue.empty()


async def test_a_cancelled_get_loses_nothing() -> None:
    queue = ReceiveQueue()
    getting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    getting.cancel()
    await asyncio.gather(getting, return_exceptions=True)
    queue.put_nowait("kept")
    assert await asyncio.wait_for(queue.get(), 1) == "kept"


async def test_flag_waits_until_set_and_not_after() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiting = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    flag.set()
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(flag.wait(), 1)  # already set: returns at once
    flag.clear()
    assert not flag.is_set()
