"""The bus contract: one set of test bodies, run against every backend (see `conftest.BACKENDS`).

Nothing here sleeps to synchronise: every wait is on an event, a sink or a task, under a timeout.
The few `asyncio.sleep` calls vary the timing of publishers, they never wait for an outcome.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import orjson
import pytest

from app.bus import Bus, BusDraining, Event, ReadResult, Sink, SinkOverflow
from app.bus.events import parse_poll_cursor
from tests.bus.conftest import MakeBus
from tests.bus.helpers import (
    SENDER,
    collect,
    durable,
    publish,
    publish_one,
    seqs,
    up_to,
    wait_until,
)

MIB = 1024 * 1024


def roomy_sink() -> Sink:
    return Sink(max_events=100_000, max_bytes=64 * MIB)


# Cursors and reads


async def test_cursors_strictly_increase_per_channel(bus: Bus) -> None:
    channels = ["room:a", "room:b", "public:c"]
    results = await asyncio.gather(
        *(bus.publish(ch, "t", orjson.dumps(i), SENDER) for i in range(60) for ch in channels)
    )
    for ch in channels:
        accepted = [event.seq for event, new in results if event.channel == ch and new]
        assert len(accepted) == 60
        # In acceptance order, each cursor is greater than the one before.
        assert all(
            a is not None and b is not None and a < b for a, b in itertools.pairwise(accepted)
        )
        later = await publish_one(bus, ch)
        assert later.seq is not None and later.seq > accepted[-1]  # type: ignore[operator]
        stored = await bus.read(ch, None, 1000)
        assert seqs(stored.events) == [*accepted, later.seq]


async def test_read_after_cursor_and_latest_without(bus: Bus) -> None:
    ch = "room:read"
    events = [await publish_one(bus, ch, i) for i in range(10)]
    latest = await bus.read(ch, None, 3)
    assert [e.to_dict() for e in latest.events] == [e.to_dict() for e in events[-3:]]
    assert latest.next == events[-1].seq and not latest.reset

    page = await bus.read(ch, events[4].seq, 3)
    assert seqs(page.events) == seqs(events[5:8])
    assert page.next == events[7].seq and not page.reset
    assert page.events[0].to_dict()["data"] == {"i": 5}
    assert page.events[0].sender == SENDER and page.events[0].type == "test"

    rest = await bus.read(ch, page.next, 100)
    assert seqs(rest.events) == seqs(events[8:])
    end = await bus.read(ch, rest.next, 100)
    assert end.events == [] and end.next == events[-1].seq and not end.reset


async def test_next_is_usable_on_a_never_used_channel(bus: Bus) -> None:
    ch = "room:never-used"
    empty = await bus.read(ch, None, 50)
    assert empty.events == [] and not empty.reset
    again = await bus.read(ch, empty.next, 50)
    assert again == ReadResult([], empty.next, False)
    event = await publish_one(bus, ch)
    after = await bus.read(ch, empty.next, 50)
    assert seqs(after.events) == [event.seq] and not after.reset


async def test_events_carry_acceptance_time(bus: Bus) -> None:
    before = time.time() * 1000
    event = await publish_one(bus, "room:ts")
    after = time.time() * 1000
    assert before - 1 <= event.ts <= after + 1
    (stored,) = (await bus.read("room:ts", None, 1)).events
    assert stored.ts == event.ts and stored.json == event.json


# Retention and reset


async def test_retention_keeps_at_least_history_size(make_bus: MakeBus) -> None:
    bus = await make_bus(history_size=5)
    ch = "room:retention"
    events = [e for _ in range(6) for e in await publish(bus, ch, 5)]
    kept = await bus.read(ch, None, 1000)
    assert len(kept.events) >= 5
    # The newest events, contiguous in acceptance order.
    assert seqs(kept.events) == seqs(events[-len(kept.events) :])
    assert kept.next == events[-1].seq


async def test_reset_for_a_cursor_older_than_retention(make_bus: MakeBus) -> None:
    bus = await make_bus(history_size=5)
    ch = "room:too-old"
    events = [e for _ in range(6) for e in await publish(bus, ch, 5)]
    retained = (await bus.read(ch, None, 1000)).events
    assert seqs(retained) != seqs(events), "history was not trimmed"

    for cursor in (0, events[0].seq):
        result = await bus.read(ch, cursor, 1000)
        assert result.reset, cursor
        # Resumes from the oldest retained event: never a silent gap.
        assert seqs(result.events) == seqs(retained)
        assert result.next == events[-1].seq

    # A limited reset read pages on normally from its `next`.
    first = await bus.read(ch, events[0].seq, 2)
    assert first.reset and seqs(first.events) == seqs(retained[:2])
    following = await bus.read(ch, first.next, 1000)
    assert not following.reset and seqs(following.events) == seqs(retained[2:])

    # A subscription from a too-old cursor gets the reset signal, then the retained events.
    sink = roomy_sink()
    async with bus.subscription(ch, sink, events[0].seq):
        items = await collect(sink, up_to(events[-1].seq))  # type: ignore[arg-type]
    assert items[0] == ("reset", ch, retained[0].seq - 1)  # the cursor it now stands after
    assert seqs(durable(items)) == seqs(retained)


async def test_reset_for_an_unknown_future_cursor(bus: Bus) -> None:
    ch = "room:future"
    events = [await publish_one(bus, ch, i) for i in range(6)]
    head = events[-1].seq
    assert head is not None
    result = await bus.read(ch, head + 1000, 4)
    assert result.reset
    assert seqs(result.events) == seqs(events[:4])  # the oldest retained onwards
    assert result.next == events[3].seq
    rest = await bus.read(ch, result.next, 100)
    assert not rest.reset and seqs(rest.events) == seqs(events[4:])

    empty_channel = await bus.read("room:future-empty", 42, 10)
    assert empty_channel.reset and empty_channel.events == []
    assert not (await bus.read("room:future-empty", empty_channel.next, 10)).reset


# Subscriptions


@pytest.mark.parametrize("seed", range(3))
async def test_subscribe_from_cursor_while_publishing_has_no_gap_or_duplicate(
    bus: Bus, seed: int
) -> None:
    """The seam between history and live: many runs with random timings and in-flight publishes."""
    rng = random.Random(seed)
    for run in range(12):
        ch = f"room:seam-{seed}-{run}"
        acked = list(await publish(bus, ch, rng.randint(0, 40)))

        async def publisher(n: int, ch: str = ch, acked: list[Event] = acked) -> None:
            for i in range(n):
                if rng.random() < 0.3:
                    acked.extend(await publish(bus, ch, rng.randint(2, 20)))
                else:
                    acked.append(await publish_one(bus, ch, i))
                if rng.random() < 0.2:
                    await asyncio.sleep(rng.random() * 0.002)  # timing jitter only

        publishers = [asyncio.create_task(publisher(rng.randint(5, 25))) for _ in range(2)]
        for _ in range(rng.randint(0, 6)):
            await asyncio.sleep(0)  # let the publishers get a random head start
        cursor = rng.choice([0, *(e.seq for e in acked)])
        sink = roomy_sink()
        async with bus.subscription(ch, sink, cursor):
            await asyncio.wait_for(asyncio.gather(*publishers), 10)
            head = max([0, *(e.seq for e in acked)])  # type: ignore[type-var]
            items = await collect(sink, up_to(head)) if head > cursor else []  # type: ignore[operator]
        expected = sorted(e.seq for e in acked if e.seq > cursor)  # type: ignore[operator]
        received = seqs(durable(items))
        assert received == expected, f"run {run}: cursor {cursor}"
        assert not any(isinstance(i, tuple) and i[0] == "reset" for i in items)


async def test_concurrent_first_subscribers_while_the_backend_is_slow_to_listen(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second subscriber must not go live before the backend listens for the first one."""
    ch = "room:slow-listen"
    gate = asyncio.Event()
    listening = asyncio.Event()
    listen = bus.backend.listen

    async def slow_listen(channel: str) -> None:
        listening.set()
        await gate.wait()
        await listen(channel)

    monkeypatch.setattr(bus.backend, "listen", slow_listen)
    first, second = roomy_sink(), roomy_sink()
    subscribing = asyncio.create_task(bus.subscribe(ch, first, 0))
    await asyncio.wait_for(listening.wait(), 5)
    other = asyncio.create_task(bus.subscribe(ch, second, 0))
    await asyncio.wait({other}, timeout=0.2)  # give it every chance to go live too early
    early = await publish(bus, ch, 5)
    gate.set()
    subs = [(await asyncio.wait_for(task, 5))[0] for task in (subscribing, other)]
    try:
        late = await publish(bus, ch, 3)
        for sink in (first, second):
            items = await collect(sink, up_to(late[-1].seq))  # type: ignore[arg-type]
            assert seqs(durable(items)) == seqs(early + late)
    finally:
        for sub in subs:
            await bus.unsubscribe(sub)


async def test_live_only_subscribe_gets_no_history(bus: Bus) -> None:
    ch = "room:live"
    history = await publish(bus, ch, 5)
    sink = roomy_sink()
    async with bus.subscription(ch, sink, None):
        live = [await publish_one(bus, ch, i) for i in range(3)]
        items = await collect(sink, up_to(live[-1].seq))  # type: ignore[arg-type]
    assert seqs(items) == seqs(live)
    assert not set(seqs(items)) & set(seqs(history))


async def test_subscribe_returns_its_start_cursor(bus: Bus) -> None:
    ch = "room:start"
    events = await publish(bus, ch, 3)
    sink = roomy_sink()
    sub, start = await bus.subscribe(ch, sink, None)
    try:
        assert start == events[-1].seq
    finally:
        await bus.unsubscribe(sub)
    sub, start = await bus.subscribe(ch, roomy_sink(), events[0].seq)
    try:
        assert start == events[0].seq
    finally:
        await bus.unsubscribe(sub)


async def test_ephemeral_events_are_live_only(bus: Bus) -> None:
    ch = "room:ephemeral"
    sink = roomy_sink()
    async with bus.subscription(ch, sink, None):
        typing, new = await bus.publish(ch, "typing", b'{"who":"a"}', "user:1", ephemeral=True)
        assert new and typing.seq is None and typing.cursor is None
        assert typing.to_dict()["id"] is None
        message = await publish_one(bus, ch)
        items = await collect(sink, up_to(message.seq))  # type: ignore[arg-type]
    kinds = [(i.type, i.seq) for i in items if not isinstance(i, tuple)]
    assert kinds == [("typing", None), ("test", message.seq)]
    stored = await bus.read(ch, None, 100)
    assert seqs(stored.events) == [message.seq]
    assert (await bus.read(ch, 0, 100)).events[0].type == "test"


# Long polls


async def test_long_polls_are_woken_together_and_get_a_burst_as_one_batch(bus: Bus) -> None:
    ch = "room:long-poll"
    head = (await bus.read(ch, None, 0)).next
    waiting = 10
    polls = [
        asyncio.create_task(bus.polls.poll(ch, head, None, 100, wait=30)) for _ in range(waiting)
    ]
    await wait_until(lambda: bus.polls.parked == waiting)
    assert not any(p.done() for p in polls)
    burst = await publish(bus, ch, 7)
    results = await asyncio.wait_for(asyncio.gather(*polls), 5)
    for result in results:
        assert seqs(result.events) == seqs(burst)
        assert not result.reset
        assert parse_poll_cursor(result.next)[0] == burst[-1].seq


async def test_long_poll_times_out_empty(bus: Bus) -> None:
    ch = "room:long-poll-timeout"
    head = (await publish(bus, ch, 2))[-1].seq
    started = time.monotonic()
    result = await asyncio.wait_for(bus.polls.poll(ch, head, None, 100, wait=0.3), 5)
    assert time.monotonic() - started >= 0.25
    assert result.events == [] and not result.reset
    assert parse_poll_cursor(result.next)[0] == head


async def test_short_poll_returns_at_once(bus: Bus) -> None:
    ch = "room:short-poll"
    events = await publish(bus, ch, 3)
    result = await asyncio.wait_for(bus.polls.poll(ch, events[0].seq, None, 100, wait=0), 5)
    assert seqs(result.events) == seqs(events[1:])


# Idempotency


async def test_idempotency_key_returns_the_same_event_stored_once(bus: Bus) -> None:
    ch = "room:idem"
    first, new = await bus.publish(ch, "t", b'{"a":1}', SENDER, idempotency_key="k1")
    again, new_again = await bus.publish(ch, "t", b'{"a":1}', SENDER, idempotency_key="k1")
    assert new and not new_again
    assert again.seq == first.seq and again.to_dict() == first.to_dict()
    # Concurrent retries of one key are one event too.
    raced = await asyncio.gather(
        *(bus.publish(ch, "t", b"2", SENDER, idempotency_key="k2") for _ in range(5))
    )
    assert len({event.seq for event, _ in raced}) == 1
    assert sum(new for _, new in raced) == 1
    # The key is scoped to the sender: another sender's same key is a new event.
    other, other_new = await bus.publish(ch, "t", b"3", "service:other", idempotency_key="k1")
    assert other_new and other.seq != first.seq
    stored = await bus.read(ch, None, 100)
    assert seqs(stored.events) == [first.seq, raced[0][0].seq, other.seq]


# Slow readers


async def test_a_never_drained_sink_overflows_while_others_get_everything(bus: Bus) -> None:
    ch = "room:slow"
    slow = Sink(max_events=5, max_bytes=MIB)
    fast = roomy_sink()
    async with bus.subscription(ch, slow, None), bus.subscription(ch, fast, None):
        events = [e for _ in range(5) for e in await publish(bus, ch, 10)]
        items = await collect(fast, up_to(events[-1].seq))  # type: ignore[arg-type]
        with pytest.raises(SinkOverflow):
            await asyncio.wait_for(slow.take(1), 5)
    assert seqs(items) == seqs(events)


# Cleanup and shutdown


async def test_subscription_context_manager_unsubscribes(bus: Bus) -> None:
    ch = "room:cleanup"
    async with bus.subscription(ch, roomy_sink(), None):
        assert bus.hub.subscriber_count(ch) == 1
    assert bus.hub.subscriber_count(ch) == 0

    with pytest.raises(RuntimeError, match="boom"):
        async with bus.subscription(ch, roomy_sink(), 0):
            assert bus.hub.subscriber_count(ch) == 1
            raise RuntimeError("boom")
    assert bus.hub.subscriber_count(ch) == 0
    assert bus.hub.subscriber_count() == 0
    # The listener count is back to zero too: the next listener is the first again.
    assert bus.hub.acquire(ch)
    assert bus.hub.release(ch)


async def test_publish_while_draining_raises(bus: Bus) -> None:
    draining = asyncio.create_task(bus.drain())
    done, _ = await asyncio.wait({draining}, timeout=5)
    assert draining in done, "drain did not finish"
    assert bus.draining
    with pytest.raises(BusDraining):
        await publish_one(bus, "room:drain")
    with pytest.raises(BusDraining):
        await bus.publish("room:drain", "t", b"1", SENDER, ephemeral=True)
    with pytest.raises(BusDraining):
        await bus.check()


async def test_events_accepted_before_drain_are_kept(bus: Bus) -> None:
    ch = "room:drain-keep"
    publishes = [
        asyncio.create_task(bus.publish(ch, "t", orjson.dumps(i), SENDER)) for i in range(50)
    ]
    # Tasks start in creation order: every publish is accepted before drain begins.
    draining = asyncio.create_task(bus.drain())
    results = await asyncio.wait_for(asyncio.gather(*publishes), 5)
    # Not wait_for: a drain that swallowed its own cancellation would look finished.
    done, _ = await asyncio.wait({draining}, timeout=5)
    assert draining in done, "drain did not finish"
    draining.result()
    accepted = [event.seq for event, _ in results]
    assert None not in accepted
    assert seqs((await bus.read(ch, None, 100)).events) == accepted


async def test_check_passes_when_healthy(bus: Bus) -> None:
    await asyncio.wait_for(bus.check(), 5)
