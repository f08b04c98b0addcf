"""A node whose PostgreSQL writer lock another process took (while its session was gone) may no
longer order events: its readiness must say so, not only its publishes."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.bus.backend import BusUnavailable
from app.bus.events import Event
from app.store.db import create_engine
from app.store.journal import SqlJournal
from app.store.locks import WRITER_KEY, WriterLock, WriterLost
from app.store.migrate import upgrade_to_head
from tests.fixtures.postgres import PostgresServer


@pytest.mark.postgres
async def test_a_journal_that_lost_its_writer_lock_is_not_ready(
    postgres_server: PostgresServer, fresh_postgres_url: str
) -> None:
    await upgrade_to_head(fresh_postgres_url)
    engine, other = create_engine(fresh_postgres_url), create_engine(fresh_postgres_url)
    writer = await WriterLock.acquire(engine, None)
    journal = SqlJournal(engine, writer=writer)
    try:
        await journal.check()
        # The writer's session ends (as in a database restart) and another process takes the
        # lock before this one writes again.
        database = fresh_postgres_url.rsplit("/", 1)[1]
        postgres_server.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            f" WHERE locktype = 'advisory' AND objid = {WRITER_KEY & 0xFFFFFFFF}",
            database,
        )
        async with other.connect() as taker:
            assert await taker.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": WRITER_KEY})
            await taker.commit()
            with pytest.raises(BusUnavailable):
                await journal.append([Event("room:x", "t", b"1", 1.0, "s", 1)])
            assert writer.lost is not None
            with pytest.raises(WriterLost):
                await journal.check()
    finally:
        await writer.release()
        await engine.dispose()
        await other.dispose()
