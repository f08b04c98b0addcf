"""Idempotency-Keys kept in the journal (app/store/journal.py `find_by_key`) and the embedded
store that falls back on it (app/bus/idempotency.py `JournalIdempotencyStore`), on SQLite and on
PostgreSQL, through both journal writers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus import Bus
from app.bus.backend import BusUnavailable, NullJournal
from app.bus.events import Event, now_ms
from app.bus.idempotency import PENDING, JournalIdempotencyStore
from app.bus.memory import MemoryBackend
from app.store.db import create_engine
from app.store.journal import SqlJournal
from app.store.migrate import upgrade_to_head
from app.store.sqlite_appender import SqliteAppender, sqlite_file

KEY_A = "user:1\x1froom:idem\x1fa"
KEY_B = "user:1\x1froom:idem\x1fb"


def event(seq: int, ts: float) -> Event:
    return Event("room:idem", "t", orjson.dumps({"n": seq}), ts, "user:1", seq)


async def check_lookup(journal: SqlJournal) -> None:
    ts = now_ms()
    events = [event(1, ts), event(2, ts), event(3, ts + 1)]
    await journal.append(events, [KEY_A, None, KEY_B])
    await journal.append([event(4, ts + 2)])  # a batch without keys
    found_a = await journal.find_by_key(KEY_A, since=ts - 1000)
    found_b = await journal.find_by_key(KEY_B, since=ts - 1000)
    assert found_a is not None and found_a.json == events[0].json
    assert found_b is not None and found_b.json == events[2].json
    assert await journal.find_by_key("user:1\x1froom:idem\x1fc", since=ts - 1000) is None
    # Only within the window: an event older than `since` is forgotten, like an expired key.
    assert await journal.find_by_key(KEY_A, since=ts + 0.5) is None
    assert await journal.find_by_key(KEY_B, since=ts + 0.5) is not None


async def test_the_engine_writer_keeps_keys_and_finds_events_by_key(engine: AsyncEngine) -> None:
    await check_lookup(SqlJournal(engine))


async def test_the_sqlite_writer_thread_keeps_keys_too(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    await upgrade_to_head(url)
    engine = create_engine(url)
    file = sqlite_file(engine)
    assert file is not None
    journal = SqlJournal(engine, appender=SqliteAppender(file))
    try:
        await check_lookup(journal)
    finally:
        await journal.close()
        await engine.dispose()


async def test_a_restarted_bus_replays_the_event_kept_under_the_key(engine: AsyncEngine) -> None:
    """Two buses on one journal, one after the other: the second has none of the first's memory."""
    journal = SqlJournal(engine)
    first_bus = Bus(MemoryBackend(journal, history_size=10), JournalIdempotencyStore(journal, 60))
    await first_bus.start()
    first, created = await first_bus.publish("room:idem", "t", b"1", "user:1", idempotency_key="k")
    await first_bus.stop()
    assert created

    bus = Bus(MemoryBackend(journal, history_size=10), JournalIdempotencyStore(journal, 60))
    await bus.start()
    try:
        replay, created = await bus.publish("room:idem", "t", b"1", "user:1", idempotency_key="k")
        assert (created, replay.json) == (False, first.json)
        # The key names its sender: another sender's "k" is another event.
        other, created = await bus.publish("room:idem", "t", b"1", "user:2", idempotency_key="k")
        assert created and other.seq == 2
        assert [e.seq for e in (await bus.read("room:idem", 0, 10)).events] == [1, 2]
    finally:
        await bus.stop()


class FailingLookup(NullJournal):
    fail = True

    async def find_by_key(self, key: str, since: float) -> Event | None:
        if self.fail:
            raise BusUnavailable("journal read failed: database is locked")
        return None


async def test_a_failed_lookup_leaves_the_key_free_for_the_retry() -> None:
    journal = FailingLookup()
    store = JournalIdempotencyStore(journal, ttl=60)
    with pytest.raises(BusUnavailable):
        await store.claim(KEY_A)
    journal.fail = False
    assert await store.claim(KEY_A) is None  # ours now, not PENDING left by the failed claim
    assert await store.claim(KEY_A) == PENDING


async def test_the_memory_answers_first_without_reading_the_journal() -> None:
    journal = FailingLookup()
    store = JournalIdempotencyStore(journal, ttl=60)
    journal.fail = False
    assert await store.claim(KEY_A) is None
    await store.put(KEY_A, b'{"x":1}')
    journal.fail = True  # a lookup now would raise
    assert await store.claim(KEY_A) == b'{"x":1}'
