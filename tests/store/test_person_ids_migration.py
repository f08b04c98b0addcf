"""0004 (person ids 32 -> 64 characters): its downgrade refuses ids that would not fit, before
changing anything, and it writes a script offline (`alembic upgrade head --sql`) on SQLite too."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text

from app.store.db import create_engine
from app.store.migrate import alembic_config, downgrade_to, upgrade_to_head
from app.store.models import Base

LONG = "3f2c9a4e-8b1d-4c7a-9e0f-1a2b3c4d5e6f-and-more"  # 45 characters
PEOPLE = [
    "INSERT INTO users (id, name, created_at) VALUES ('u1', 'U', 1)",
    f"INSERT INTO users (id, name, created_at) VALUES ('{LONG}', 'L', 1)",
    "INSERT INTO rooms (name, created_by, created_at) VALUES ('r', 'user:u1', 1)",
    f"INSERT INTO memberships (room, user_id, joined_at) VALUES ('r', '{LONG}', 1)",
    "INSERT INTO notifications (id, user_id, title, body, created_at)"
    f" VALUES ('n1', '{LONG}', 't', 'b', 1)",
]


async def _scalars(url: str, queries: list[str]) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [await conn.scalar(text(query)) for query in queries]
    finally:
        await engine.dispose()


async def test_downgrade_refuses_ids_too_long_naming_them_and_changes_nothing(
    database_url: str,
) -> None:
    await upgrade_to_head(database_url, "0004")  # from 0004 itself: later ones are not its test
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for statement in PEOPLE:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()

    with pytest.raises(RuntimeError, match="cannot downgrade 0004 -> 0003") as refused:
        await downgrade_to(database_url, "0003")

    message = str(refused.value)
    assert f"users.id: '{LONG}'" in message
    assert f"memberships.user_id: '{LONG}'" in message
    assert "Nothing was changed" in message
    counts = await _scalars(
        database_url,
        [
            "SELECT version_num FROM alembic_version",
            "SELECT count(*) FROM users",
            "SELECT count(*) FROM memberships",
            "SELECT count(*) FROM notifications",
        ],
    )
    assert counts == ["0004", 2, 1, 1]


def _offline_script(url: str, revisions: str) -> str:
    config = alembic_config(url)
    config.output_buffer = io.StringIO()
    command.upgrade(config, revisions, sql=True)
    return config.output_buffer.getvalue()


def test_offline_script_on_sqlite_migrates_like_online_keeping_people(tmp_path: Path) -> None:
    """`alembic upgrade head --sql` for SQLite: run by its reader on a 0003 database with foreign
    keys on, it keeps every row and ends in the models' schema."""
    path = tmp_path / "offline.db"
    url = f"sqlite+aiosqlite:///{path}"
    with sqlite3.connect(path, isolation_level=None) as db:
        db.executescript(_offline_script(url, "0003"))
        db.execute("PRAGMA foreign_keys=ON")
        for statement in PEOPLE:
            if LONG not in statement:
                db.execute(statement)
        db.execute("INSERT INTO memberships (room, user_id, joined_at) VALUES ('r', 'u1', 1)")

        db.executescript(_offline_script(url, "0003:head"))

        counts = [
            db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("users", "memberships")
        ]
        assert counts == [1, 1]
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0009",)
    engine = create_sync_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
