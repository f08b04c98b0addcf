"""The highest Redis epoch, kept in one row (table `highest_epoch`) for the Redis backend.

A node must propose epochs above every one cursors were made in (app/bus/redis/epoch.py). The
archive holds them, but only as `max(seq)` of the events table, whose keys lead with the channel:
a scan of every row, 70-100 ms per million on PostgreSQL, at every start. The row is written
only when a node meets an epoch above it (Redis lost data: rare), and read as a node starts.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from .models import EventRow, HighestEpoch

_table = HighestEpoch.__table__
_ROW = 1


async def remembered_epoch(engine: AsyncEngine) -> int | None:
    """The epoch kept, or None while no node has filled the row yet."""
    async with engine.connect() as conn:
        value = await conn.scalar(select(_table.c.epoch).where(_table.c.id == _ROW))
    return None if value is None else int(value)


async def remember_epoch(engine: AsyncEngine, epoch: int) -> None:
    """Keep `epoch`, unless a higher one is kept already: nodes write it concurrently."""
    module = postgresql if engine.dialect.name == "postgresql" else sqlite
    insert = module.insert(_table).values(id=_ROW, epoch=epoch)
    upsert = insert.on_conflict_do_update(
        index_elements=["id"],
        set_={"epoch": insert.excluded.epoch},
        where=_table.c.epoch < insert.excluded.epoch,
    )
    async with engine.begin() as conn:
        await conn.execute(upsert)


async def highest_cursor(engine: AsyncEngine) -> int:
    """The archive's highest cursor: a scan, as no index leads with `seq`. Read once, while the
    row is empty (a database from before it, or a new one)."""
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.max(EventRow.__table__.c.seq))) or 0)
