"""The journal's group commit on SQLite, as one call to one writer thread.

Through SQLAlchemy's async engine on aiosqlite a commit is a pool checkout, BEGIN, the INSERT,
COMMIT and the pool's reset, each a round trip to aiosqlite's thread: about four times the CPU of
one thread running the whole transaction on its own connection (bench/README.md). A publish
at a time (a chat, a benchmark's steady publisher) commits alone, so that difference is paid per
event. Durability is unchanged: the same file, WAL, `synchronous=FULL`, and the call returns only
after COMMIT. Everything else (reads, archive, rooms) stays on the engine; the two connections
share SQLite's write lock under the same busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ..bus.backend import BusUnavailable
from ..bus.events import Event
from .journal_health import check_room

WRITE_LOCK_WAIT_MS = 2000
"""How long a group commit waits for a write lock another writer holds before it fails: the
publishes in it then get 503 + Retry-After instead of waiting for as long as the lock lasts (the
engine's connections keep the longer busy timeout of app/store/db.py)."""
INSERT = (
    "INSERT INTO events (channel, seq, type, data, ts, sender, idempotency_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def sqlite_file(engine: AsyncEngine) -> Path | None:
    """The database file the engine's connections open (resolved by its dialect, so the writer
    opens exactly that file); None for in-memory databases (one per connection) and URI forms."""
    if engine.dialect.name != "sqlite":
        return None
    args, options = engine.dialect.create_connect_args(engine.url)
    if options.get("uri") or not args:
        return None
    name = str(args[0])
    if name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


class SqliteAppender:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="journal-writer")
        self._connection: sqlite3.Connection | None = None

    async def append(
        self, events: Sequence[Event], keys: Sequence[str | None] | None = None
    ) -> None:
        """Keep `events` (and their idempotency `keys`, when given) in one transaction."""
        keyed = keys or [None] * len(events)
        rows = [
            (e.channel, e.seq, e.type, e.data.decode(), e.ts, e.sender, k)
            for e, k in zip(events, keyed, strict=True)
        ]
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._write, rows)
        except sqlite3.Error as exc:
            raise BusUnavailable(f"journal write failed: {exc}") from exc

    def _write(self, rows: list[tuple[object, ...]]) -> None:
        connection = self._connection or self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(INSERT, rows)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    async def probe(self, room: int) -> None:
        """Raise BusUnavailable unless a batch could be kept now: the write lock is free (taken
        and given back, nothing written) and the disk has `room` bytes free."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._probe, room)
        except (sqlite3.Error, OSError) as exc:
            raise BusUnavailable(f"journal not writable: {exc}") from exc

    def _probe(self, room: int) -> None:
        connection = self._connection or self._connect()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        check_room(self._path, room)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path, timeout=WRITE_LOCK_WAIT_MS / 1000, isolation_level=None
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # see app/store/db.py: FULL, not NORMAL
        connection.execute(f"PRAGMA busy_timeout={WRITE_LOCK_WAIT_MS}")
        self._connection = connection
        return connection

    async def close(self) -> None:
        def close() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await asyncio.get_running_loop().run_in_executor(self._thread, close)
        self._thread.shutdown(wait=True)
