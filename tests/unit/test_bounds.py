"""Budgets and memory bounds against hostile clients (issue 11), on real components and a driven
clock: nothing here races time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest

from app.bus import Bus, NullJournal, Sink, create_bus, memory
from app.bus.backend import Draft, OutcomeUnknown
from app.bus.commit import BusOverloaded
from app.bus.idempotency import ENTRY_OVERHEAD, MemoryIdempotencyStore
from app.bus.memory import MemoryBackend
from app.errors import RateLimited
from app.features.presence import Presence
from app.features.presence_shared import LocalMembership
from app.features.publishing import Publisher
from app.features.typing import LocalTypingState, Typing
from app.identity.budgets import Budgets, actor_key
from app.identity.limits import ConnectionLimits, TokenBuckets, address_key
from app.identity.principal import ANONYMOUS, Principal
from app.settings import Settings
from app.store.db import create_engine
from app.store.journal import SqlJournal
from app.store.migrate import upgrade_to_head

ALICE = Principal("user", "alice", "Alice")
ROOM = "room:lobby"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_buckets_refill_at_their_rate_on_the_injected_clock() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2, burst=3, what="things", clock=clock)
    for _ in range(3):
        buckets.take_now("k")
    with pytest.raises(RateLimited) as limited:
        buckets.take_now("k")
    assert limited.value.retry_after == pytest.approx(0.5)
    assert limited.value.message == "too many things, slow down"
    clock.now += 0.5
    buckets.take_now("k")  # exactly one token back
    with pytest.raises(RateLimited):
        buckets.take_now("k")
    assert buckets.refused == 2
    clock.now += 10
    buckets.take_now("k", cost=100)  # a cost over the burst costs the burst, never "never"


def test_ipv6_addresses_count_by_their_64_prefix() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("10.0.0.1") == "10.0.0.1"
    limits = ConnectionLimits(per_user=100, per_ip=2, total=100)
    limits.acquire(None, "2001:db8::1")
    limits.acquire(None, "2001:db8::2")
    with pytest.raises(RateLimited):
        limits.acquire(None, "2001:db8::ffff:3")  # same /64: the third is over the cap
    limits.acquire(None, "2001:db8:0:1::1")  # another /64
    limits.release(None, "2001:db8::2")
    limits.acquire(None, "2001:db8::7")


def test_budgets_are_per_person_or_per_address_and_none_for_services() -> None:
    clock = Clock()
    budgets = Budgets.for_settings(Settings(signup_burst=2, signup_rate=1), clock)
    for _ in range(2):
        budgets.signup.take_now(address_key("2001:db8::1"))
    with pytest.raises(RateLimited):
        budgets.signup.take_now(address_key("2001:db8::2"))
    assert budgets.refused()["signup"] == 1
    assert actor_key(ALICE, "1.2.3.4") == "alice"
    assert actor_key(ANONYMOUS, "2001:db8::5") == actor_key(ANONYMOUS, "2001:db8::6")
    assert actor_key(Principal("service", "svc", "svc"), "1.2.3.4") is None


async def announced(sink: Sink, timeout: float = 0.05) -> list[str]:
    items = await sink.take(timeout=timeout)
    return [i.type for i in items if not isinstance(i, tuple)]


async def test_a_stream_closed_and_reopened_within_the_grace_announces_nothing(bus: Bus) -> None:
    publisher = Publisher(bus, TokenBuckets(100, 100), 65536)
    presence = Presence(publisher, 30, LocalMembership(), grace=0.3)
    await presence.start()
    sink = Sink(10_000, 1 << 24)
    try:
        async with bus.subscription(ROOM, sink, None):
            lease = await presence.connect(ROOM, ALICE, "websocket")
            assert await announced(sink) == ["presence.join"]
            for _ in range(500):  # subscribe/unsubscribe churn
                await presence.disconnect(lease)
                lease = await presence.connect(ROOM, ALICE, "websocket")
            assert await announced(sink) == []
            await presence.disconnect(lease)
            # Gone for good: one leave once the grace lapses (bounded wait, not a sleep).
            assert await announced(sink, timeout=5) == ["presence.leave"]
            assert presence.bounds.size == 0
    finally:
        await presence.stop()


async def test_presence_entries_are_bounded(bus: Bus) -> None:
    publisher = Publisher(bus, TokenBuckets(100, 100), 65536)
    presence = Presence(publisher, 30, LocalMembership(), max_entries=3)
    for n in range(10):
        await presence.touch(f"room:r{n}", ALICE, "shortpoll")
    assert presence.bounds.size == 3 and presence.bounds.untracked == 7


async def test_presence_entries_from_one_address_are_bounded_and_freed_as_they_leave(
    bus: Bus,
) -> None:
    clock = Clock()
    publisher = Publisher(bus, TokenBuckets(100, 100), 65536)
    presence = Presence(publisher, 30, LocalMembership(), max_per_address=2, clock=clock)
    bob = Principal("user", "bob", "Bob")
    for n in range(4):  # two people at one IPv6 /64: one bound
        await presence.touch(f"room:r{n}", ALICE if n % 2 else bob, "shortpoll", ip="2001:db8::1")
    lease = await presence.connect("room:r9", bob, "websocket", ip="2001:db8::ffff")
    assert presence.bounds.size == 2 and presence.bounds.untracked_address == 3
    await presence.touch("room:r0", ALICE, "shortpoll", ip="2001:db8:1::1")  # another address
    assert presence.bounds.size == 3
    clock.now += 31  # the first address's leases lapse: its entries are free again
    await presence.reap()
    await presence.disconnect(lease)
    assert presence.bounds.size == 0
    await presence.touch("room:r5", bob, "shortpoll", ip="2001:db8::2")
    assert presence.bounds.size == 1 and presence.bounds.untracked_address == 3


async def test_typing_state_is_bounded_and_sheds_expired_entries() -> None:
    state = LocalTypingState(throttle=0, expiry=0.05, max_entries=5)
    for n in range(5):
        assert await state.signal(f"room:r{n}", "alice", "Alice")
    assert not await state.signal("room:new", "alice", "Alice")  # full: dropped, not kept
    assert state.size == 5 and state.dropped == 1
    await asyncio.sleep(0.06)  # past the expiry: the next signal sweeps the stale ones
    assert await state.signal("room:new", "alice", "Alice")
    assert state.size == 1


async def test_idempotency_store_is_bounded_by_bytes() -> None:
    event = b"x" * 1000
    cost = len("key-00") + len(event) + ENTRY_OVERHEAD
    store = MemoryIdempotencyStore(ttl=60, max_bytes=cost * 3)
    for n in range(10):
        assert await store.claim(f"key-{n:02}") is None
        await store.put(f"key-{n:02}", event)
    assert store.bytes <= cost * 3
    assert await store.claim("key-09") == event  # the newest are kept
    assert await store.claim("key-00") is None  # the oldest forgotten


async def test_poll_pages_are_capped_in_bytes_and_next_continues_them() -> None:
    bus = create_bus(Settings(poll_max_bytes=64 * 1024), NullJournal())
    await bus.start()
    try:
        data = orjson.dumps("x" * 10_000)
        for _ in range(20):
            await bus.publish(ROOM, "big", data, "user:a")
        seen: list[int] = []
        cursor: int | None = 0
        marker = None
        while True:
            page = await bus.polls.poll(ROOM, cursor, marker, 1000, 0)
            size = sum(len(e.json) for e in page.events)
            assert size <= 64 * 1024 or len(page.events) == 1
            seen += [e.seq for e in page.events]  # type: ignore[misc]
            if not page.truncated:
                break
            cursor = int(page.next.partition("_")[0])
        assert seen == list(range(1, 21))
    finally:
        await bus.stop()


@contextlib.asynccontextmanager
async def journaled_bus(tmp_path: Path, settings: Settings) -> AsyncIterator[Bus]:
    """An in-process bus over a SQLite journal (logs let go are read back from it), started."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    await upgrade_to_head(url)
    engine = create_engine(url)
    journal = SqlJournal(engine)
    bus = create_bus(settings, journal)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()
        await journal.close()
        await engine.dispose()


async def test_idle_channel_logs_leave_memory_and_come_back_from_the_journal(
    tmp_path: Path,
) -> None:
    settings = Settings(bus_max_channels=50, bus_channel_idle=3600)
    async with journaled_bus(tmp_path, settings) as bus:
        backend = bus.backend
        assert isinstance(backend, MemoryBackend)
        for n in range(200):
            await bus.publish(f"room:c{n}", "t", b"1", "user:a")
            await bus.publish(f"room:c{n}", "t", b"2", "user:a")
        assert backend.channels_in_memory <= 50 and backend.evicted >= 150
        # An evicted channel comes back whole, and goes on numbering where it was.
        read = await bus.read("room:c0", 0, 10)
        assert [e.seq for e in read.events] == [1, 2]
        event, _ = await bus.publish("room:c0", "t", b"3", "user:a")
        assert event.seq == 3
        # Idle eviction, on a driven clock.
        backend.evict(now=time.monotonic() + 3600 + 1)
        assert backend.channels_in_memory == 0
        assert [e.seq for e in (await bus.read("room:c7", 0, 10)).events] == [1, 2]


async def test_channel_logs_in_memory_are_bounded_by_bytes_counted_exactly(
    tmp_path: Path,
) -> None:
    settings = Settings(bus_max_bytes=1 << 20, history_size=40)
    data = orjson.dumps("x" * 20_000)
    async with journaled_bus(tmp_path, settings) as bus:
        backend = bus.backend
        assert isinstance(backend, MemoryBackend)
        for _ in range(60):  # past history_size: logs are trimmed as well as let go
            for c in range(10):
                await bus.publish(f"room:b{c}", "t", data, "user:a")
            held = [e for log in backend._logs.values() for e in log.events]
            assert backend.bytes == sum(len(e.json) for e in held) <= 1 << 20
        assert backend.evicted > 0 and backend.channels_in_memory < 10
        # A log let go comes back from the journal with its last events, counted again.
        read = await bus.read("room:b0", 50, 10)
        assert [e.seq for e in read.events] == list(range(51, 61))
        held = [e for log in backend._logs.values() for e in log.events]
        assert backend.bytes == sum(len(e.json) for e in held) <= 1 << 20


class StalledJournal(NullJournal):
    """A journal whose writes wait until let go: publishes pile up in the group commit."""

    def __init__(self) -> None:
        self.go = asyncio.Event()

    async def append(self, events: object, keys: object = None) -> None:
        await self.go.wait()


async def test_publishes_waiting_for_a_commit_are_bounded_by_count_and_bytes() -> None:
    """A stalled journal must not let publishes (a service has no budget) hold memory without
    end: past either bound a publish is refused (503), and both show in /metrics."""
    journal = StalledJournal()
    settings = Settings(max_pending_publishes=100, max_pending_publish_bytes=64 * 1024)
    bus = create_bus(settings, journal)
    await bus.start()
    try:
        big = orjson.dumps("x" * 20_000)
        waiting = [
            asyncio.ensure_future(bus.publish("public:stall", "t", big, "service:s"))
            for _ in range(3)
        ]
        await _until(lambda: bus.commits.pending == 3)  # a fourth's bytes would not fit
        assert bus.commits.pending_bytes == 3 * len(big)
        with pytest.raises(BusOverloaded):
            await bus.publish("public:stall", "t", big, "service:s")
        small = [
            asyncio.ensure_future(bus.publish("public:stall", "t", b"1", "service:s"))
            for _ in range(97)
        ]
        await _until(lambda: bus.commits.pending == 100)
        with pytest.raises(BusOverloaded):
            await bus.publish("public:stall", "t", b"1", "service:s")
        journal.go.set()
        await asyncio.gather(*waiting, *small)
        assert (bus.commits.pending, bus.commits.pending_bytes) == (0, 0)
    finally:
        await bus.stop()


async def _until(condition: Callable[[], bool]) -> None:
    """Let the loop run (no I/O here: each publish queues within a few steps) until it holds."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never came true")


class FailingJournal(NullJournal):
    async def append(self, events: object, keys: object = None) -> None:
        raise OSError("disk gone")


async def test_channels_whose_appends_failed_are_remembered_within_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through a long write outage, each channel of a failed append is remembered (to deliver
    what that append kept after all): not without end."""
    monkeypatch.setattr(memory, "MAX_SUSPECT", 5)
    backend = MemoryBackend(FailingJournal(), history_size=10)
    await backend.start(lambda events: None)
    for n in range(20):
        with pytest.raises(OutcomeUnknown):
            await backend.append([Draft(f"public:c{n}", "t", b"1", "service:s")])
    assert len(backend._suspect) == 5


async def test_a_typing_signal_refused_for_the_publish_budget_leaves_no_one_typing(
    bus: Bus,
) -> None:
    """A refused request changes nothing: a signal over the person's publish budget gets 429,
    and nobody reading the room's state is told they are typing."""
    clock = Clock()
    publisher = Publisher(bus, TokenBuckets(1, 1, clock=clock), 65536)
    typing = Typing(publisher, LocalTypingState(throttle=0, expiry=30))
    await publisher.publish(ALICE, ROOM, "chat.message", {"text": "the budget's one token"})
    with pytest.raises(RateLimited):
        await publisher.publish(ALICE, ROOM, "typing", {})
    assert await typing.typing(ROOM) == []
    clock.now += 1  # a token again: the signal is taken, and shown
    await publisher.publish(ALICE, ROOM, "typing", {})
    assert await typing.typing(ROOM) == [{"user": "alice", "name": "Alice"}]
