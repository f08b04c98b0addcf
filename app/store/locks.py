"""The writer lock, which keeps processes sharing one database from stepping on each other.

- The writer lock: without Redis, the process that orders events is the in-process bus, so two
  processes on one journal would hand out the same cursors. The first process holds the lock for
  its lifetime and any other one refuses to start. On SQLite it is an `flock` on a file beside the
  database (released by the kernel when the process dies, even by kill -9); on PostgreSQL a
  session-level advisory lock held on a connection of its own (released when that session ends).
  PostgreSQL ends every session when it restarts, so there the journal writes on that same
  session (`WriterLock.write`): a write that commits proves the lock was held. After a restart
  the next write takes the lock again on a new session; if another process took it meanwhile,
  this one has lost the journal: it writes nothing more, and `on_lost` stops it.
- The migration lock is in migration_lock.py (its `flock` on SQLite is this module's `FileLock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..bus.backend import BusUnavailable

log = logging.getLogger(__name__)

WRITER_KEY = 0x666F_7263_0001
"""Advisory lock id (64-bit) of the writer (migrations': MIGRATION_KEY), fixed so every node
agrees."""
WRITER_CHECK = 5.0
"""Seconds between two checks of an idle PostgreSQL writer's session (see `WriterLock.watch`)."""
LOCK_POLL = 0.02


class JournalInUse(RuntimeError):
    """Another process already orders events on this journal: this one must not start."""


def refusal(where: str) -> str:
    return (
        f"another fourcast process is already writing the journal at {where}. Without Redis one "
        "process orders events, so a second one on the same database would hand out the same "
        "cursors. Set FOURCAST_REDIS_URL (all processes on one Redis) to run several processes, "
        "or give each process its own FOURCAST_DATA_DIR / FOURCAST_DATABASE_URL."
    )


class FileLock:
    """An exclusive `flock` on `path`, held until `release` or the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def acquire(self, timeout: float) -> None:
        """Wait for the lock (polling, so no thread is left blocked if the wait is abandoned)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.try_acquire():
            if loop.time() > deadline:
                raise TimeoutError(f"could not lock {self.path} within {timeout:.0f}s")
            await asyncio.sleep(LOCK_POLL)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class WriterLost(BusUnavailable):
    """Another process took the journal's writer lock while this one's session was gone."""


class WriterLock:
    """The one-writer lock of a journal (see the module docstring)."""

    def __init__(
        self,
        file: FileLock | None = None,
        connection: AsyncConnection | None = None,
        engine: AsyncEngine | None = None,
    ):
        self._file = file
        self._connection = connection
        self._engine = engine
        self._writing = asyncio.Lock()
        self.lost: str | None = None
        """Why this process may no longer write (None while it holds the lock)."""
        self.on_lost: Callable[[str], None] = lambda reason: None
        """Called once, when the lock is found taken by another process."""
        self._watch: asyncio.Task[None] | None = None

    def watch(self, every: float = WRITER_CHECK) -> None:
        """PostgreSQL: look at the session every `every` seconds, as a write would, so that an
        idle process whose lock another took (across a database restart) stops too: its
        readers would otherwise be served from a memory that no longer follows the journal."""
        if self._engine is not None and self._watch is None:
            self._watch = asyncio.create_task(self._check(every), name="writer-lock-watch")

    async def _check(self, every: float) -> None:
        while self.lost is None:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):  # down: the next look, or write, retakes it
                await self.write(look)

    @property
    def holds_session(self) -> bool:
        """PostgreSQL's kind: the journal must write through `write`."""
        return self._engine is not None

    async def write(self, work: Callable[[AsyncConnection], Awaitable[object]]) -> None:
        """Run `work` in one transaction on the lock's own session, taking the lock again first
        if that session is gone (the database restarted). Raises WriterLost when another
        process holds it now, BusUnavailable when the database cannot be reached."""
        async with self._writing:
            if self.lost is not None:
                raise WriterLost(self.lost)
            connection = self._connection or await self._retake()
            try:
                async with connection.begin():
                    await work(connection)
            except BaseException:
                if connection.invalidated or connection.closed:
                    self._connection = None  # the session, and the lock with it, are gone
                    with contextlib.suppress(Exception):
                        await connection.close()
                    # Taken again now (this write still fails): a process that took it
                    # meanwhile is found at once, not at the next write.
                    with contextlib.suppress(BusUnavailable):
                        await self._retake()
                raise

    async def _retake(self) -> AsyncConnection:
        assert self._engine is not None
        try:
            connection = await _take_writer_lock(self._engine)
        except Exception as exc:
            raise BusUnavailable(f"database unavailable: {type(exc).__name__}") from exc
        if connection is None:
            self.lost = refusal(self._engine.url.render_as_string(hide_password=True))
            log.critical("this process lost the journal's writer lock: %s", self.lost)
            self.on_lost(self.lost)
            raise WriterLost(self.lost)
        log.warning("the journal's writer lock was taken again on a new database session")
        self._connection = connection
        return connection

    @classmethod
    async def acquire(cls, engine: AsyncEngine, sqlite_path: Path | None) -> WriterLock:
        """Take the lock or raise JournalInUse; an in-memory SQLite database needs none."""
        if engine.dialect.name == "sqlite":
            if sqlite_path is None:
                return cls()
            lock = FileLock(sqlite_path.with_name(sqlite_path.name + ".writer.lock"))
            if not lock.try_acquire():
                raise JournalInUse(refusal(str(sqlite_path)))
            return cls(file=lock)
        connection = await _take_writer_lock(engine)
        if connection is None:
            raise JournalInUse(refusal(engine.url.render_as_string(hide_password=True)))
        return cls(connection=connection, engine=engine)

    async def release(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        if self._file is not None:
            self._file.release()
            self._file = None
        if self._connection is not None:
            with contextlib.suppress(Exception):  # the session ending releases it anyway
                await self._connection.close()
            self._connection = None


async def _take_writer_lock(engine: AsyncEngine) -> AsyncConnection | None:
    """A new session holding PostgreSQL's writer lock, or None when another process holds it."""
    connection = await engine.connect()
    try:
        taken = await connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": WRITER_KEY}
        )
        await connection.commit()
    except BaseException:
        await connection.close()
        raise
    if not taken:
        await connection.close()
        return None
    return connection


async def look(connection: AsyncConnection) -> object:
    return await connection.execute(text("SELECT 1"))
