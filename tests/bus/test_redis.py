"""The Redis backend as several nodes share it: cross-node delivery, shared cursors, the archive."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import pytest

from app.bus import Bus, BusUnavailable, NullJournal, Sink
from app.bus.archive import BATCH, ArchiveBehind
from app.bus.events import Event
from app.bus.redis import RedisBackend
from app.bus.sink import Item
from tests.bus.conftest import MakeBus, redis_only
from tests.bus.helpers import SENDER, collect, durable, publish, publish_one, seqs, up_to

pytestmark = redis_only

MIB = 1024 * 1024


def roomy_sink() -> Sink:
    return Sink(max_events=100_000, max_bytes=64 * MIB)


def backend(bus: Bus) -> RedisBackend:
    return cast(RedisBackend, bus.backend)


class RecordingJournal(NullJournal):
    """A journal with the store's `archive`, failing its first `failures` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.archived: list[Event] = []
        self.failures = failures
        self.calls = 0
        self.changed = asyncio.Event()

    async def archive(self, events: Sequence[Event]) -> None:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is down")
        self.archived.extend(events)
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while len(self.archived) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_an_event_published_on_one_node_reaches_subscribers_on_another(
    make_bus: MakeBus,
) -> None:
    a, b = await make_bus(), await make_bus()
    ch = "room:cross"
    history = await publish(a, ch, 3)
    sink = roomy_sink()
    async with b.subscription(ch, sink, 0):
        live = await publish(a, ch, 4)
        items = await collect(sink, up_to(live[-1].seq))  # type: ignore[arg-type]
    assert seqs(items) == seqs(history + live)
    assert [e.to_dict() for e in durable(items)] == [e.to_dict() for e in history + live]


async def test_a_long_poll_on_one_node_is_woken_by_a_publish_on_another(
    make_bus: MakeBus,
) -> None:
    a, b = await make_bus(), await make_bus()
    ch = "room:cross-poll"
    head = (await b.read(ch, None, 0)).next
    poll = asyncio.create_task(b.polls.poll(ch, head, None, 100, wait=30))
    # Publish until the poll, once listening on node b, has seen one: no sleep, no race.
    published: list[Event] = []
    async with asyncio.timeout(10):
        while not poll.done():
            published.append(await publish_one(a, ch))
            await asyncio.wait({poll}, timeout=0.05)
    result = poll.result()
    assert result.events and seqs(result.events) == seqs(published[: len(result.events)])


async def test_nodes_share_one_order_per_channel(make_bus: MakeBus) -> None:
    a, b = await make_bus(), await make_bus()
    ch = "room:shared-order"
    sinks = [roomy_sink(), roomy_sink()]
    async with a.subscription(ch, sinks[0], 0), b.subscription(ch, sinks[1], 0):
        results = await asyncio.gather(
            *(publish(node, ch, 10) for _ in range(5) for node in (a, b))
        )
        acked = sorted(e.seq for batch in results for e in batch)  # type: ignore[type-var]
        assert len(set(acked)) == len(acked) == 100
        received = [await collect(sink, up_to(acked[-1])) for sink in sinks]  # type: ignore[arg-type]
    assert seqs(received[0]) == seqs(received[1]) == acked


async def test_ephemeral_events_cross_nodes_once(make_bus: MakeBus) -> None:
    a, b = await make_bus(), await make_bus()
    ch = "room:cross-typing"
    sink_a, sink_b = roomy_sink(), roomy_sink()
    async with a.subscription(ch, sink_a, None), b.subscription(ch, sink_b, None):
        await a.publish(ch, "typing", b'"alice"', SENDER, ephemeral=True)
        marker = await publish_one(a, ch)

        def both(items: list[Item]) -> bool:
            return up_to(marker.seq)(items) and any(  # type: ignore[arg-type]
                isinstance(e, Event) and e.seq is None for e in items
            )

        got_a = await collect(sink_a, both)
        got_b = await collect(sink_b, both)
        # One more durable event: nothing else (no echo of the ephemeral one) came before it.
        last = await publish_one(a, ch)
        got_a += await collect(sink_a, up_to(last.seq))  # type: ignore[arg-type]
        got_b += await collect(sink_b, up_to(last.seq))  # type: ignore[arg-type]
    for items in (got_a, got_b):
        # Ephemeral and durable events take different paths between nodes: no order between them.
        kinds = sorted((e.type, e.seq or 0) for e in items if isinstance(e, Event))
        assert kinds == [("test", marker.seq), ("test", last.seq), ("typing", 0)]
    assert (await b.read(ch, None, 10)).events[0].seq == marker.seq


async def test_idempotency_key_holds_across_nodes(make_bus: MakeBus) -> None:
    a, b = await make_bus(), await make_bus()
    ch = "room:cross-idem"
    first, new = await a.publish(ch, "t", b"1", SENDER, idempotency_key="retry-me")
    again, new_again = await b.publish(ch, "t", b"1", SENDER, idempotency_key="retry-me")
    assert new and not new_again and again.seq == first.seq
    assert seqs((await b.read(ch, None, 10)).events) == [first.seq]


async def test_resubscribing_on_a_node_resumes_without_gap(make_bus: MakeBus) -> None:
    a, b = await make_bus(), await make_bus()
    ch = "room:relisten"
    acked: list[Event] = []
    for _ in range(10):
        sink = roomy_sink()
        cursor = acked[-1].seq if acked else 0
        async with b.subscription(ch, sink, cursor):
            acked.extend(await publish(a, ch, 3))
            items = await collect(sink, up_to(acked[-1].seq))  # type: ignore[arg-type]
        assert seqs(items) == [e.seq for e in acked if e.seq > cursor]  # type: ignore[operator]
        acked.extend(await publish(a, ch, 2))  # published while nobody on b listens


async def test_streams_are_trimmed_to_about_history_size(make_bus: MakeBus) -> None:
    bus = await make_bus(history_size=10)
    ch = "room:trim"
    for _ in range(10):
        await publish(bus, ch, 50)
    length = await backend(bus).redis.xlen(backend(bus).key(ch))
    assert 10 <= length < 500
    assert len((await bus.read(ch, None, 1000)).events) == 10


async def test_the_publishing_node_archives_its_events_with_retry(make_bus: MakeBus) -> None:
    journal = RecordingJournal(failures=2)
    a = await make_bus(journal=journal)
    other = RecordingJournal()
    b = await make_bus(journal=other)
    ch = "room:archive"
    events = [e for _ in range(3) for e in await publish(a, ch, 5)]
    await journal.wait_for(len(events))
    assert seqs(journal.archived) == seqs(events)
    assert journal.calls >= 3
    # Only the publishing node archives: the other node delivers, but never writes.
    await publish_one(b, "room:elsewhere")
    await other.wait_for(1)
    assert [e.channel for e in other.archived] == ["room:elsewhere"]


@pytest.mark.parametrize("limit", [1, 3])
async def test_reads_page_through_a_long_stream(make_bus: MakeBus, limit: int) -> None:
    bus = await make_bus(history_size=50)
    ch = "room:pages"
    events = await publish(bus, ch, 20)
    cursor, got = 0, []
    for _ in range(40):
        result = await bus.read(ch, cursor, limit)
        assert not result.reset
        if not result.events:
            break
        got.extend(result.events)
        cursor = result.next
    assert seqs(got) == seqs(events)


async def test_the_archive_never_drops_and_holds_publishers_back_when_behind(
    make_bus: MakeBus,
) -> None:
    journal = RecordingJournal(failures=1_000_000)  # the database is down
    # No linger: the archive tries (and fails) as soon as the first event is acknowledged.
    bus = await make_bus(journal=journal, archive_max_queued=5, archive_linger_ms=0)
    archiver = backend(bus).archiver
    ch = "room:archive-bounded"
    acked = await publish(bus, ch, 5)
    # Five acknowledged events wait for the database: the next publish is refused, not dropped.
    with pytest.raises(ArchiveBehind):
        await publish_one(bus, ch)
    assert archiver.lag == 5
    journal.failures = 0  # the database is back
    await journal.wait_for(5, timeout=15)
    assert seqs(journal.archived) == seqs(acked)
    assert archiver.lag == 0 and archiver.failures >= 1
    later = await publish_one(bus, ch)
    await journal.wait_for(6, timeout=15)
    assert seqs(journal.archived) == [*seqs(acked), later.seq]


async def test_the_archive_gathers_a_trickle_of_publishes_into_one_transaction(
    make_bus: MakeBus,
) -> None:
    journal = RecordingJournal()
    bus = await make_bus(journal=journal, archive_linger_ms=10_000)  # longer than this test
    archiver = backend(bus).archiver
    ch = "room:archive-linger"
    acked = [await publish_one(bus, ch, i) for i in range(3)]  # one at a time, each acknowledged
    assert (archiver.lag, journal.calls) == (3, 0)  # gathered, not yet written
    # A stopping node does not sit out the linger: it flushes what it holds at once.
    async with asyncio.timeout(5):
        await archiver.stop()
    assert journal.calls == 1
    assert seqs(journal.archived) == seqs(acked)


async def test_a_full_batch_is_archived_without_waiting_for_the_linger(
    make_bus: MakeBus,
) -> None:
    journal = RecordingJournal()
    bus = await make_bus(journal=journal, archive_linger_ms=10_000)
    ch = "room:archive-full"
    first = await publish_one(bus, ch)
    for _ in range(20):  # the archive's turns: it is lingering now, with one event
        await asyncio.sleep(0)
    assert (backend(bus).archiver.lag, journal.calls) == (1, 0)
    rest = await publish(bus, ch, BATCH - 1)  # the batch fills while it lingers
    await journal.wait_for(BATCH, timeout=5)  # well inside the linger
    assert seqs(journal.archived) == seqs([first, *rest])


async def test_a_full_archive_queue_is_written_without_waiting_for_the_linger(
    make_bus: MakeBus,
) -> None:
    """Publishers are held back (503) while the queue is full: the linger must not hold them."""
    journal = RecordingJournal()
    bus = await make_bus(journal=journal, archive_linger_ms=10_000, archive_max_queued=3)
    ch = "room:archive-queue-full"
    acked = [await publish_one(bus, ch, i) for i in range(3)]
    await journal.wait_for(3, timeout=5)  # well inside the linger
    assert seqs(journal.archived) == seqs(acked)
    assert not backend(bus).archiver.full


async def test_ack_after_journal_acknowledges_only_what_the_journal_kept(
    make_bus: MakeBus,
) -> None:
    journal = RecordingJournal(failures=1)
    bus = await make_bus(journal=journal, ack_after_journal=True)
    ch = "room:ack-after-journal"
    with pytest.raises(BusUnavailable):
        await publish_one(bus, ch, 1)  # in Redis, not in the journal: not acknowledged
    event = await publish_one(bus, ch, 2)
    # Acknowledged means already in the journal, without waiting for the archiver.
    assert event.seq in seqs(journal.archived)
