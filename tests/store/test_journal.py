"""The SQL journal against the bus's `Journal` contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

import orjson
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.backend import BusUnavailable, Draft, Journal
from app.bus.events import Event, now_ms
from app.bus.memory import MemoryBackend
from app.store.db import create_engine
from app.store.journal import SqlJournal
from app.web.wire import sse_frame


def make_event(channel: str, seq: int, data: object = None, type_: str = "test") -> Event:
    return Event(channel, type_, orjson.dumps(data), now_ms(), "service:test", seq)


def batch(channel: str, first: int, last: int) -> list[Event]:
    return [make_event(channel, seq, {"n": seq}) for seq in range(first, last + 1)]


def seqs(events: list[Event]) -> list[int | None]:
    return [event.seq for event in events]


@pytest.fixture
def journal(engine: AsyncEngine) -> SqlJournal:
    return SqlJournal(engine)


def test_implements_the_bus_protocol(journal: SqlJournal) -> None:
    as_protocol: Journal = journal
    assert as_protocol is journal


async def test_round_trip_rebuilds_identical_events(journal: SqlJournal) -> None:
    data = {"text": 'héllo ✓ \u0000 "quoted"', "nested": [1, 2.5, None, True], "big": 2**62}
    original = make_event("room:lobby", 1, data, "chat.message")
    await journal.append([original])

    events, head = await journal.tail("room:lobby", 10)

    assert head == 1
    [stored] = events
    assert stored.data == original.data
    assert stored.ts == original.ts
    assert stored.json == original.json
    assert sse_frame(stored) == sse_frame(original)


async def test_empty_channel(journal: SqlJournal) -> None:
    assert await journal.tail("room:nobody", 10) == ([], 0)
    assert await journal.tail("room:nobody", 0) == ([], 0)
    assert await journal.read("room:nobody", 0, 10) == []


async def test_tail_returns_the_newest_oldest_first(journal: SqlJournal) -> None:
    await journal.append(batch("public:a", 1, 30))
    await journal.append(batch("public:b", 1, 5))

    events, head = await journal.tail("public:a", 10)
    assert seqs(events) == list(range(21, 31))
    assert head == 30

    events, head = await journal.tail("public:a", 100)
    assert seqs(events) == list(range(1, 31))
    assert head == 30

    assert await journal.tail("public:a", 0) == ([], 30)
    assert {e.channel for e in (await journal.tail("public:b", 100))[0]} == {"public:b"}


async def test_read_after_a_cursor(journal: SqlJournal) -> None:
    await journal.append(batch("public:a", 1, 20))
    await journal.append(batch("public:b", 1, 20))

    assert seqs(await journal.read("public:a", 0, 5)) == [1, 2, 3, 4, 5]
    assert seqs(await journal.read("public:a", 15, 100)) == [16, 17, 18, 19, 20]
    assert await journal.read("public:a", 20, 100) == []
    assert await journal.read("public:a", 3, 0) == []
    assert all(e.channel == "public:a" for e in await journal.read("public:a", 0, 100))


async def test_events_come_back_in_cursor_order(journal: SqlJournal) -> None:
    shuffled = batch("public:a", 1, 200)
    random.Random(7).shuffle(shuffled)
    for start in range(0, 200, 50):
        await journal.append(shuffled[start : start + 50])

    assert seqs(await journal.read("public:a", 0, 1000)) == list(range(1, 201))
    events, head = await journal.tail("public:a", 1000)
    assert seqs(events) == list(range(1, 201))
    assert head == 200


async def test_a_failing_batch_keeps_nothing(journal: SqlJournal) -> None:
    await journal.append(batch("public:a", 1, 3))
    # The duplicate sits in the middle of a batch that also touches another channel.
    doomed = [*batch("public:b", 1, 5), make_event("public:a", 2), *batch("public:a", 4, 6)]

    with pytest.raises(BusUnavailable) as failed:
        await journal.append(doomed)
    assert isinstance(failed.value.__cause__, IntegrityError)

    assert seqs(await journal.read("public:a", 0, 100)) == [1, 2, 3]
    assert await journal.tail("public:b", 10) == ([], 0)
    # The journal stays usable after the failure.
    await journal.append(batch("public:a", 4, 6))
    assert (await journal.tail("public:a", 0))[1] == 6


async def test_large_batch_in_one_append(journal: SqlJournal) -> None:
    payload = "x" * 1000
    events = [
        make_event(f"public:c{seq % 7}", seq // 7 + 1, {"p": payload}) for seq in range(20_000)
    ]
    await journal.append(events)

    total = 0
    for channel in {e.channel for e in events}:
        after, pages = 0, 0
        while page := await journal.read(channel, after, 1000):
            assert seqs(page) == list(range(after + 1, after + 1 + len(page)))
            after, pages, total = page[-1].seq or 0, pages + 1, total + len(page)
        assert (await journal.tail(channel, 0))[1] == after
    assert total == 20_000


async def test_largest_event_data_round_trips(journal: SqlJournal) -> None:
    data = {"blob": "é" * (32 * 1024)}  # 64 KiB of UTF-8 once encoded
    await journal.append([make_event("public:big", 1, data)])
    [stored] = await journal.read("public:big", 0, 1)
    assert orjson.loads(stored.data) == data


async def test_concurrent_appends_all_land(journal: SqlJournal) -> None:
    await asyncio.gather(*(journal.append(batch(f"public:p{n}", 1, 100)) for n in range(10)))
    for n in range(10):
        assert (await journal.tail(f"public:p{n}", 0))[1] == 100


async def test_archive_skips_events_already_kept(journal: SqlJournal) -> None:
    await journal.append(batch("public:a", 1, 5))
    overlapping = [make_event("public:a", seq, {"again": True}) for seq in range(3, 9)]

    await journal.archive(overlapping)
    await journal.archive(overlapping)

    events = await journal.read("public:a", 0, 100)
    assert seqs(events) == list(range(1, 9))
    # The first copy wins: an archived event is never rewritten.
    assert [orjson.loads(e.data) for e in events[:5]] == [{"n": n} for n in range(1, 6)]
    assert orjson.loads(events[5].data) == {"again": True}


async def test_empty_batches_are_no_ops(journal: SqlJournal) -> None:
    await journal.append([])
    await journal.archive([])
    assert await journal.tail("public:a", 10) == ([], 0)


async def test_check_passes_on_a_working_database(journal: SqlJournal) -> None:
    await journal.check()


async def test_check_raises_when_the_database_is_unusable(
    database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        # A directory where the database file should be: SQLite cannot open it.
        (tmp_path / "not-a-file").mkdir()
        broken = f"sqlite+aiosqlite:///{tmp_path / 'not-a-file'}"
    else:
        broken = database_url.rsplit("/", 1)[0] + "/no_such_database"
    engine = create_engine(broken)
    try:
        with pytest.raises(BusUnavailable):
            await SqlJournal(engine).check()
    finally:
        await engine.dispose()
        # aiosqlite stops a connection that failed to open without awaiting its worker thread;
        # let that thread finish while this test's event loop can still take its last callback.
        await asyncio.to_thread(_join_aiosqlite_threads)


def _join_aiosqlite_threads() -> None:
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            thread.join(timeout=5)


async def test_memory_bus_history_survives_a_restart(engine: AsyncEngine) -> None:
    """The in-process backend over this journal: cursors are stable across a restart."""
    first = MemoryBackend(SqlJournal(engine), history_size=5)
    await first.start(lambda events: None)
    drafts = [Draft("room:lobby", "chat.message", orjson.dumps(n), "user:u1") for n in range(8)]
    accepted = [*await first.append(drafts[:3]), *await first.append(drafts[3:])]
    await first.stop()

    restarted = MemoryBackend(SqlJournal(engine), history_size=5)
    result = await restarted.read("room:lobby", None, 100)

    assert seqs(result.events) == [4, 5, 6, 7, 8]
    assert result.next == 8
    assert [e.json for e in result.events] == [e.json for e in accepted[3:]]
    [appended] = await restarted.append(drafts[:1])
    assert appended.seq == 9
