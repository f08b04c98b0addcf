"""The migration lock: every node migrates at start, so migrations run one at a time (an `flock`
on SQLite, an advisory lock on PostgreSQL, `pg_try_advisory_lock` polled; each waits at most
MIGRATION_WAIT) and a node that waited finds the schema up to date."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .locks import LOCK_POLL, FileLock

MIGRATION_KEY = 0x666F_7263_0002
"""Advisory lock id (64-bit) of migrations (the writer's: WRITER_KEY), fixed so every node agrees."""
MIGRATION_WAIT = 120.0
"""Seconds a node waits for another node's migrations before giving up."""


@contextlib.asynccontextmanager
async def migration_lock(engine: AsyncEngine, sqlite_path: Path | None) -> AsyncIterator[None]:
    """Hold the migration lock around the body (a no-op for an in-memory SQLite database).

    Taken before the body opens its first connection: on SQLite, opening one may switch the file
    to WAL, which needs the database to itself and fails at once (no busy wait) while another
    migration holds it."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            # Polled rather than blocking in pg_advisory_lock: the wait stays bounded by
            # MIGRATION_WAIT, whatever statement timeout the connection has.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + MIGRATION_WAIT
            while not await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_KEY}
            ):
                await connection.commit()
                if loop.time() > deadline:
                    raise TimeoutError(f"migrations still locked after {MIGRATION_WAIT:.0f}s")
                await asyncio.sleep(LOCK_POLL)
            await connection.commit()
            try:
                yield
            finally:
                await connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_KEY}
                )
                await connection.commit()
        return
    if sqlite_path is None:
        yield
        return
    lock = FileLock(sqlite_path.with_name(sqlite_path.name + ".migrate.lock"))
    await lock.acquire(MIGRATION_WAIT)
    try:
        yield
    finally:
        lock.release()
