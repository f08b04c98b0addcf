"""The journal's SQLite writer thread (app/store/sqlite_appender.py): the same contract as the
engine path it replaces for `append`, on a real database file shared with the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from app.bus.backend import BusUnavailable
from app.bus.events import Event, now_ms
from app.store.db import create_engine
from app.store.journal import SqlJournal
from app.store.migrate import upgrade_to_head
from app.store.sqlite_appender import SqliteAppender, sqlite_file


def event(channel: str, seq: int, data: object = None) -> Event:
    return Event(channel, "chat.message", orjson.dumps(data), now_ms(), "user:1", seq)


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqlJournal]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    await upgrade_to_head(url)
    engine = create_engine(url)
    file = sqlite_file(engine)
    assert file == tmp_path / "j.db"
    journal = SqlJournal(engine, appender=SqliteAppender(file))
    try:
        yield journal
    finally:
        await journal.close()
        await engine.dispose()


async def test_the_writer_opens_the_file_the_engine_opens(tmp_path: Path) -> None:
    def file_for(url: str) -> Path | None:
        engine = create_engine(url)
        try:
            return sqlite_file(engine)
        finally:
            engine.sync_engine.dispose()

    assert file_for(f"sqlite+aiosqlite:///{tmp_path}/x.db") == tmp_path / "x.db"
    # Relative and `~` paths as SQLAlchemy resolves them (no home-directory expansion).
    assert file_for("sqlite+aiosqlite:///~/x.db") == Path.cwd() / "~" / "x.db"
    assert file_for("sqlite+aiosqlite://") is None
    assert file_for("sqlite+aiosqlite:///:memory:") is None
    assert file_for("sqlite+aiosqlite:///file:x.db?mode=ro&uri=true") is None
    assert file_for("postgresql+asyncpg://u@127.0.0.1/db") is None


async def test_appended_events_read_back_identical_through_the_engine(
    journal: SqlJournal,
) -> None:
    original = [event("room:a", 1, {"text": 'héllo ✓ "q"'}), event("room:a", 2, [1, None])]
    await journal.append(original)
    stored, head = await journal.tail("room:a", 10)
    assert head == 2
    assert [e.json for e in stored] == [e.json for e in original]


async def test_a_failing_batch_keeps_nothing_and_the_writer_stays_usable(
    journal: SqlJournal,
) -> None:
    await journal.append([event("room:a", 1), event("room:a", 2)])
    doomed = [event("room:b", 1), event("room:a", 2), event("room:a", 3)]  # seq 2 again
    with pytest.raises(BusUnavailable):
        await journal.append(doomed)
    assert await journal.tail("room:b", 10) == ([], 0)
    assert (await journal.tail("room:a", 0))[1] == 2
    await journal.append([event("room:a", 3)])
    assert (await journal.tail("room:a", 0))[1] == 3


async def test_writes_interleave_with_the_engines_own_writes(journal: SqlJournal) -> None:
    """The writer thread and the engine's connections share SQLite's write lock."""

    async def through_writer() -> None:
        for seq in range(1, 101):
            await journal.append([event("room:w", seq)])

    async def through_engine() -> None:
        for seq in range(1, 101):
            await journal.archive([event("room:e", seq)])

    await asyncio.gather(through_writer(), through_engine())
    assert (await journal.tail("room:w", 0))[1] == 100
    assert (await journal.tail("room:e", 0))[1] == 100
