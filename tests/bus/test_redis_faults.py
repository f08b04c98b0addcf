"""The Redis backend when Redis goes away, hangs, or holds entries it did not write.

The time bounds asserted are generous hang detectors, not performance targets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import cast

import pytest

from app.bus import Bus, BusUnavailable, Sink
from app.bus.events import Event
from app.bus.redis import RedisBackend
from app.bus.redis.streams import split_cursor
from app.bus.sink import Item
from tests.bus.conftest import MakeBus, redis_only
from tests.bus.helpers import collect, durable, publish_one, publish_retrying, seqs, up_to
from tests.fixtures.redis import RedisServer

pytestmark = redis_only

MIB = 1024 * 1024
FAIL_FAST = 5.0


def roomy_sink() -> Sink:
    return Sink(max_events=100_000, max_bytes=64 * MIB)


def backend(bus: Bus) -> RedisBackend:
    return cast(RedisBackend, bus.backend)


async def test_publishes_fail_fast_while_redis_is_down_and_nothing_acknowledged_is_lost(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    a, b = await make_bus(), await make_bus()
    ch = "room:outage"
    acked: list[Event] = []
    failures: list[float] = []
    enough_before = asyncio.Event()
    failed = asyncio.Event()
    restarted = asyncio.Event()

    async def publisher() -> None:
        after_restart = 0
        for i in range(100_000):
            started = time.monotonic()
            try:
                acked.append(await publish_one(a, ch, i))
            except BusUnavailable:
                failures.append(time.monotonic() - started)
                failed.set()
                await asyncio.sleep(0.02)  # pacing while Redis is down, not synchronisation
                continue
            if len(acked) >= 30:
                enough_before.set()
            if restarted.is_set():
                after_restart += 1
                if after_restart >= 30:
                    return

    sinks = {"a": roomy_sink(), "b": roomy_sink()}
    async with a.subscription(ch, sinks["a"], 0), b.subscription(ch, sinks["b"], 0):
        task = asyncio.create_task(publisher())
        try:
            await asyncio.wait_for(enough_before.wait(), 10)
            await asyncio.to_thread(redis_server.stop)
            await asyncio.wait_for(failed.wait(), 10)
            started = time.monotonic()
            with pytest.raises(BusUnavailable):
                await a.check()
            assert time.monotonic() - started < FAIL_FAST
            await asyncio.to_thread(redis_server.start)
            restarted.set()
            await asyncio.wait_for(task, 30)
        finally:
            task.cancel()
        last = acked[-1].seq
        received = {
            name: await collect(sink, lambda items: last in seqs(items), timeout=15)
            for name, sink in sinks.items()
        }
    assert failures and max(failures) < FAIL_FAST
    acked_seqs = {e.seq for e in acked}
    for name, items in received.items():
        got = seqs(durable(items))
        assert len(got) == len(set(got)), f"{name}: duplicated"
        # A restart starts a new epoch: the subscribers get a reset, and cursors are in order
        # within each epoch (between resets).
        assert resets(items) == 1, f"{name}: {resets(items)} resets"
        for segment in segments(items):
            assert segment == sorted(segment), f"{name}: out of order"
        assert acked_seqs <= set(got), f"{name} lost {sorted(acked_seqs - set(got))}"
    # A reader from the start stops where the epoch changes; going on from there is a reset.
    first = await a.read(ch, 0, 10_000)
    assert not first.reset and first.events and first.more
    assert (await a.read(ch, first.next, 10_000)).reset
    everything = await a.read(ch, None, 10_000)
    assert acked_seqs <= set(seqs(everything.events))


def resets(items: list[Item]) -> int:
    return sum(1 for i in items if isinstance(i, tuple) and i[0] == "reset")


def segments(items: list[Item]) -> list[list[int | None]]:
    parts: list[list[int | None]] = [[]]
    for item in items:
        if isinstance(item, tuple) and item[0] == "reset":
            parts.append([])
        elif isinstance(item, Event) and item.seq is not None:
            parts[-1].append(item.seq)
    return parts


async def test_a_hung_redis_fails_fast(make_bus: MakeBus, redis_server: RedisServer) -> None:
    bus = await make_bus()
    ch = "room:frozen"
    await publish_one(bus, ch)
    redis_server.freeze()
    try:
        for call in (
            lambda: publish_one(bus, ch),
            bus.check,
            lambda: bus.read(ch, 0, 10),
            lambda: bus.publish(ch, "typing", b"1", "user:1", ephemeral=True),
        ):
            started = time.monotonic()
            with pytest.raises(BusUnavailable):
                await asyncio.wait_for(call(), FAIL_FAST * 2)
            assert time.monotonic() - started < FAIL_FAST
    finally:
        redis_server.thaw()
    # Right after the thaw a probe may still be in flight (the recovery of the publish whose
    # reply was lost looks for it in the background), and while one is, the others are refused
    # at once: the node is back once a publish lands.
    event = await publish_retrying(bus, ch, 0)
    # A publish that timed out may still have been applied once Redis woke up (its reply was
    # what got lost): BusUnavailable means "not acknowledged", not "not stored".
    stored = (await bus.read(ch, 0, 100)).events
    numbers = [split_cursor(seq)[1] for seq in seqs(stored)]  # type: ignore[arg-type]
    assert numbers == list(range(1, len(stored) + 1)) and stored[-1].seq == event.seq


async def test_subscribing_while_redis_is_down_fails_and_leaves_nothing_behind(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    bus = await make_bus()
    ch = "room:down"
    await asyncio.to_thread(redis_server.stop)
    with pytest.raises(BusUnavailable):
        await bus.subscribe(ch, roomy_sink(), 0)
    with pytest.raises(BusUnavailable):
        await bus.polls.poll(ch, 0, None, 10, wait=5)
    assert bus.hub.subscriber_count() == 0
    assert bus.hub.acquire(ch)  # the failed listeners were released
    bus.hub.release(ch)


async def test_malformed_entries_are_logged_and_skipped(
    make_bus: MakeBus, caplog: pytest.LogCaptureFixture
) -> None:
    bus = await make_bus()
    redis = backend(bus).redis
    key = backend(bus).key("room:malformed")
    ch = "room:malformed"
    sink = roomy_sink()
    with caplog.at_level(logging.WARNING, logger="app.bus.redis"):
        async with bus.subscription(ch, sink, 0):
            good = [await publish_one(bus, ch, 1)]
            await redis.xadd(key, {"garbage": "x"}, id="0-*")
            await redis.xadd(key, {"t": "ok", "f": "x", "ts": "1", "d": "{not json"}, id="0-*")
            await redis.xadd(key, {"t": "bad\ntype", "f": "x", "ts": "1", "d": "1"}, id="0-*")
            good.append(await publish_one(bus, ch, 2))
            items = await collect(sink, up_to(good[-1].seq))  # type: ignore[arg-type]
    assert seqs(items) == seqs(good)
    assert "malformed" in caplog.text
    assert seqs((await bus.read(ch, 0, 100)).events) == seqs(good)
    assert seqs((await bus.read(ch, None, 100)).events) == seqs(good)
    # A page of one reads past the bad entries instead of stopping short.
    page = await bus.read(ch, good[0].seq, 1)
    assert seqs(page.events) == seqs(good[1:]) and page.next == good[1].seq


async def _restart_redis(bus: Bus, redis_server: RedisServer) -> None:
    """A clean restart: nothing is lost, yet a new epoch begins (the marker's run id changed)."""
    await asyncio.to_thread(redis_server.stop)
    await asyncio.to_thread(redis_server.start)
    async with asyncio.timeout(15):
        while True:
            try:
                await bus.check()
                return
            except BusUnavailable:
                await asyncio.sleep(0.05)  # the pool reconnecting, not synchronisation


def arrived(event: Event) -> Callable[[list[Item]], bool]:
    return lambda items: any(isinstance(i, Event) and i.seq == event.seq for i in items)


async def test_a_subscriber_resuming_from_before_a_new_epoch_gets_a_reset_then_every_later_event(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    """A reader whose cursor is a few events short of an old epoch's end, subscribing after the
    node already went on into the new epoch: its catch-up reads the old epoch's rest, then the
    reset and the new epoch, and it goes live from there (not from the old epoch's cursor, which
    would skip the new epoch's events whenever its cursors compare lower)."""
    a = await make_bus()
    ch = "room:epoch-seam"
    watcher = roomy_sink()
    async with a.subscription(ch, watcher, None):
        old = [await publish_one(a, ch, i) for i in range(3)]
        await _restart_redis(a, redis_server)
        first_new = await publish_retrying(a, ch, 3)
        assert split_cursor(first_new.seq)[0] != split_cursor(old[-1].seq)[0]  # type: ignore[arg-type]
        await collect(watcher, arrived(first_new), timeout=10)  # the node is in the new epoch

        late = roomy_sink()
        async with a.subscription(ch, late, old[1].seq):
            second_new = await publish_one(a, ch, 4)
            items = await collect(late, arrived(second_new), timeout=10)
    assert seqs(items) == [old[2].seq, first_new.seq, second_new.seq]
    assert resets(items) == 1
    # After the old epoch's rest, before the new one, whose first event it stands just before.
    assert items.index(("reset", ch, first_new.seq - 1)) == 1  # type: ignore[operator]


async def test_paging_from_the_oldest_event_through_an_old_epoch_reaches_the_new_one(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    """Small pages from a reset: the reader reaches the end of the old epoch, gets one more reset
    there and goes on into the new epoch, instead of being sent back to the oldest event."""
    a = await make_bus()
    ch = "room:epoch-pages"
    old = [await publish_one(a, ch, i) for i in range(5)]
    await _restart_redis(a, redis_server)
    new = [await publish_retrying(a, ch, 5), await publish_one(a, ch, 6)]
    unknown = old[0].seq + 10_000  # type: ignore[operator]
    got: list[Event] = []
    reset_count = 0
    cursor = unknown
    for _ in range(10):  # bounded: 7 events in pages of 2 need 5 reads
        page = await a.read(ch, cursor, 2)
        reset_count += page.reset
        got.extend(page.events)
        if not page.events and not page.more:
            break
        cursor = page.next
    else:
        raise AssertionError(f"paging never ended; got {seqs(got)}")
    assert seqs(got) == seqs([*old, *new])
    assert reset_count == 2  # the unknown cursor, then the end of the old epoch
