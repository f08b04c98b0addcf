"""The bus's journal in SQL: the durable event log that the in-process bus commits to.

`append` is the group-commit path: the bus's single committer hands it every event accepted in the
last millisecond or so, and acknowledges them only when it returns. So it is one transaction, one
core `executemany` INSERT, and no ORM objects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Row, Select, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..bus.backend import BusUnavailable
from ..bus.events import Event
from . import epochs
from .journal_health import WriteHealth
from .locks import WriterLock, WriterLost, look
from .models import EventRow
from .sqlite_appender import SqliteAppender

events_table = EventRow.__table__
_COLUMNS = (
    events_table.c.channel,
    events_table.c.seq,
    events_table.c.type,
    events_table.c.data,
    events_table.c.ts,
    events_table.c.sender,
)


def event_params(event: Event, key: str | None = None) -> dict[str, Any]:
    """The row for an event; `data` is kept as the JSON text it was published as."""
    return {
        "idempotency_key": key,
        "channel": event.channel,
        "seq": event.seq,
        "type": event.type,
        "data": event.data.decode(),
        "ts": event.ts,
        "sender": event.sender,
    }


def row_to_event(row: Row[Any]) -> Event:
    """Rebuild an event (and its one-time encodings) from a stored row."""
    channel, seq, type_, data, ts, sender = row
    return Event(channel, type_, data.encode(), ts, sender, seq)


def select_events() -> Select[Any]:
    return select(*_COLUMNS)


class SqlJournal:
    """`app.bus.backend.Journal` over the `events` table, for SQLite and PostgreSQL alike."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        check_timeout: float = 5.0,
        appender: SqliteAppender | None = None,
        writer: WriterLock | None = None,
    ) -> None:
        self._engine = engine
        self._writer = writer if writer is not None and writer.holds_session else None
        """PostgreSQL's writer lock, on whose session appends are written (see locks.py)."""
        self._check_timeout = check_timeout
        self._insert = events_table.insert()
        self._archive_insert = _insert_ignoring_duplicates(engine.dialect.name)
        self._appender = appender
        """SQLite's faster path for `append` (app/store/sqlite_appender.py)."""
        self.health = WriteHealth()
        """Whether the last batch was kept, for readiness (app/store/journal_health.py)."""

    async def close(self) -> None:
        if self._appender is not None:
            await self._appender.close()

    async def append(
        self, events: Sequence[Event], keys: Sequence[str | None] | None = None
    ) -> None:
        """Keep a batch of events in one transaction: all of them or, on error, none; `keys`, when
        given, are the events' idempotency keys, kept in the same transaction."""
        if not events:
            return
        try:
            await self._append(events, keys)
        except BusUnavailable as exc:
            self.health.failed(str(exc), sum(len(e.data) for e in events))
            raise
        self.health.kept()

    async def _append(self, events: Sequence[Event], keys: Sequence[str | None] | None) -> None:
        if self._appender is not None:
            await self._appender.append(events, keys)
            return
        keyed = keys or [None] * len(events)
        rows = [event_params(e, k) for e, k in zip(events, keyed, strict=True)]
        with unavailable("journal write failed"):
            if self._writer is not None:
                await self._writer.write(lambda conn: conn.execute(self._insert, rows))
                return
            async with self._engine.begin() as conn:
                await conn.execute(self._insert, rows)

    async def find_by_key(self, key: str, since: float) -> Event | None:
        """The first event kept under the idempotency `key` with a `ts` at or after `since`: one
        read of the partial index, paid only by a keyed publish the memory store has forgotten."""
        with unavailable("journal read failed"):
            async with self._engine.connect() as conn:
                row = (
                    await conn.execute(
                        select_events()
                        .where(events_table.c.idempotency_key == key, events_table.c.ts >= since)
                        .order_by(events_table.c.ts, events_table.c.seq)
                        .limit(1)
                    )
                ).first()
        return None if row is None else row_to_event(row)

    async def archive(self, events: Sequence[Event]) -> None:
        """Like `append`, but events already kept are skipped: archiving may be retried or overlap."""
        if not events:
            return
        async with self._engine.begin() as conn:
            await conn.execute(self._archive_insert, [event_params(e) for e in events])

    async def tail(self, channel: str, limit: int) -> tuple[list[Event], int]:
        """The last `limit` events of a channel, oldest first, and its highest cursor (0: none)."""
        with unavailable("journal read failed"):
            return await self._tail(channel, limit)

    async def _tail(self, channel: str, limit: int) -> tuple[list[Event], int]:
        async with self._engine.connect() as conn:
            if limit > 0:
                rows = (
                    await conn.execute(
                        select_events()
                        .where(events_table.c.channel == channel)
                        .order_by(events_table.c.seq.desc())
                        .limit(limit)
                    )
                ).all()
                events = [row_to_event(row) for row in reversed(rows)]
                return events, (events[-1].seq or 0) if events else 0
            head = await conn.scalar(
                select(func.max(events_table.c.seq)).where(events_table.c.channel == channel)
            )
            return [], int(head or 0)

    async def read(self, channel: str, after: int, limit: int) -> list[Event]:
        """Events with a cursor greater than `after`, oldest first."""
        if limit <= 0:
            return []
        with unavailable("journal read failed"):
            async with self._engine.connect() as conn:
                rows = await conn.execute(
                    select_events()
                    .where(events_table.c.channel == channel, events_table.c.seq > after)
                    .order_by(events_table.c.seq)
                    .limit(limit)
                )
                return [row_to_event(row) for row in rows]

    async def highest_cursor(self) -> int:
        """A scan: read only while no epoch is remembered (app/store/epochs.py)."""
        with unavailable("journal read failed"):
            return await epochs.highest_cursor(self._engine)

    async def remembered_epoch(self) -> int | None:
        with unavailable("journal read failed"):
            return await epochs.remembered_epoch(self._engine)

    async def remember_epoch(self, epoch: int) -> None:
        with unavailable("journal write failed"):
            await epochs.remember_epoch(self._engine, epoch)

    async def check(self) -> None:
        """Raise BusUnavailable when the database cannot be reached in time, when this process
        may no longer write it (another took the writer lock), or when the last batch failed and
        a look at what a batch needs says one would fail still."""
        if self._writer is not None and self._writer.lost is not None:
            raise WriterLost(self._writer.lost)
        try:
            async with asyncio.timeout(self._check_timeout):
                async with self._engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                if self.health.failure is not None:
                    await self._probe()
        except BusUnavailable:
            raise
        except Exception as exc:  # any driver or timeout error means "not ready"
            raise BusUnavailable(f"database unavailable: {exc!r}") from exc

    async def _probe(self) -> None:
        """Clear the last batch's failure if a batch would be kept now (journal_health.py)."""
        if self._appender is not None:
            await self._appender.probe(self.health.room_wanted())
        elif self._writer is not None:
            await self._writer.write(look)  # the session and its lock, taken again if gone
        self.health.kept()


@contextlib.contextmanager
def unavailable(what: str) -> Iterator[None]:
    """The database away (down, locked, full, a connection lost) is `BusUnavailable`: 503 and
    Retry-After for the client, never an internal error."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise BusUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc


def _insert_ignoring_duplicates(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(events_table).on_conflict_do_nothing(
            index_elements=["channel", "seq"]
        )
    if dialect == "sqlite":
        return sqlite.insert(events_table).on_conflict_do_nothing(index_elements=["channel", "seq"])
    raise ValueError(f"unsupported database dialect {dialect!r}")
