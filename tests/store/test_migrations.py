"""Migrations: they build the schema from nothing, and the schema they build is the models'."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from app.bus.events import Event
from app.store.db import create_engine
from app.store.journal import SqlJournal
from app.store.migrate import ROOT, downgrade_to, upgrade_to_head
from app.store.models import Base

TABLES = {"events", "users", "rooms", "memberships", "notifications", "highest_epoch"}


async def _inspect(url: str) -> tuple[set[str], list[object], str | None]:
    """Tables, autogenerate differences against the models, and the current revision."""

    def run(conn: Connection) -> tuple[set[str], list[object], str | None]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
        return set(inspect(conn).get_table_names()), diff, context.get_current_revision()

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(run)
    finally:
        await engine.dispose()


async def test_upgrade_builds_exactly_the_models_schema(database_url: str) -> None:
    await upgrade_to_head(database_url)

    tables, diff, revision = await _inspect(database_url)

    assert tables >= TABLES
    assert diff == []
    assert revision == "0009"


async def test_upgrade_is_repeatable_and_reversible(database_url: str) -> None:
    await upgrade_to_head(database_url)
    await upgrade_to_head(database_url)
    await downgrade_to(database_url, "base")

    tables, _, revision = await _inspect(database_url)
    assert not tables & TABLES
    assert revision is None

    await upgrade_to_head(database_url)
    assert (await _inspect(database_url))[2] == "0009"


async def test_migrations_keep_data_they_do_not_touch(database_url: str) -> None:
    await upgrade_to_head(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO events (channel, seq, type, data, ts, sender)"
                    " VALUES ('public:a', 1, 't', '{}', 1.5, 'service:x')"
                )
            )
    finally:
        await engine.dispose()

    await upgrade_to_head(database_url)

    async with _connected(database_url) as conn:
        assert await conn.scalar(text("SELECT count(*) FROM events")) == 1


def test_alembic_command_line_and_module_entry_point(database_url: str, tmp_path: Path) -> None:
    """`alembic upgrade head` (the app's settings pick the URL) and `python -m app.store.migrate`."""
    env = {"FOURCAST_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    alembic = Path(sys.executable).parent / "alembic"
    subprocess.run(
        [str(alembic), "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    current = subprocess.run(
        [str(alembic), "current"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    assert "0009 (head)" in current.stdout

    # From another working directory, with the URL as an argument.
    done = subprocess.run(
        [sys.executable, "-m", "app.store.migrate", database_url],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        text=True,
    )
    assert "latest revision" in done.stdout


async def test_widening_person_ids_keeps_people_memberships_and_notifications(
    database_url: str,
) -> None:
    """0004 rebuilds the people tables on SQLite: with foreign keys enforced, dropping the old
    `users` would have deleted every membership and notification in cascade."""
    await upgrade_to_head(database_url, "0003")
    rows = [
        "INSERT INTO users (id, name, created_at) VALUES ('u1', 'U', 1)",
        "INSERT INTO rooms (name, created_by, created_at) VALUES ('r', 'user:u1', 1)",
        "INSERT INTO memberships (room, user_id, joined_at) VALUES ('r', 'u1', 1)",
        "INSERT INTO notifications (id, user_id, title, body, created_at)"
        " VALUES ('n1', 'u1', 't', 'b', 1)",
    ]
    await _execute(database_url, rows)
    await upgrade_to_head(database_url)
    uuid = "3f2c9a4e-8b1d-4c7a-9e0f-1a2b3c4d5e6f"  # 36 characters: a Keycloak `sub`
    await _execute(
        database_url,
        [
            f"INSERT INTO users (id, name, created_at) VALUES ('{uuid}', 'K', 1)",
            f"INSERT INTO memberships (room, user_id, joined_at) VALUES ('r', '{uuid}', 1)",
        ],
    )
    async with _connected(database_url) as conn:
        for table, count in (("users", 2), ("memberships", 2), ("notifications", 1)):
            assert await conn.scalar(text(f"SELECT count(*) FROM {table}")) == count, table
    await _execute(
        database_url,
        [
            f"DELETE FROM memberships WHERE user_id = '{uuid}'",
            f"DELETE FROM users WHERE id = '{uuid}'",
        ],
    )
    await downgrade_to(database_url, "0003")  # and back, now that every id fits again
    assert (await _inspect(database_url))[2] == "0003"


@contextlib.asynccontextmanager
async def _connected(url: str) -> AsyncIterator[AsyncConnection]:
    """A connection to the database at `url`, its engine disposed of afterwards."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def _execute(url: str, statements: list[str]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_highest_epoch_is_a_table_of_its_own_that_0005_adds_and_takes_away(
    database_url: str,
) -> None:
    """0005 adds the one-row table where Redis nodes remember the highest epoch; going back
    drops it and keeps the events, and going up again leaves it empty (read from the archive)."""
    await upgrade_to_head(database_url)
    engine = create_engine(database_url)
    journal = SqlJournal(engine)
    try:
        assert await journal.remembered_epoch() is None
        await journal.remember_epoch(7)
        await journal.remember_epoch(5)  # a lower one, from a node that knew less: kept 7
        assert await journal.remembered_epoch() == 7
        await journal.append([Event("public:a", "t", b"{}", 1.0, "service:x", 9 << 36 | 1)])
    finally:
        await engine.dispose()

    await downgrade_to(database_url, "0004")
    tables, _, revision = await _inspect(database_url)
    assert "highest_epoch" not in tables and revision == "0004"

    await upgrade_to_head(database_url)
    engine = create_engine(database_url)
    journal = SqlJournal(engine)
    try:
        assert await journal.remembered_epoch() is None
        assert await journal.highest_cursor() == 9 << 36 | 1
    finally:
        await engine.dispose()


async def test_0006_keeps_notifications_and_leaves_those_from_before_it_alone(
    database_url: str,
) -> None:
    """0006 adds the key a notification's event is published under until it is attached. Rows
    from before get none (whether their event exists is not known): no start publishes them."""
    await upgrade_to_head(database_url, "0005")
    await _execute(
        database_url,
        [
            "INSERT INTO users (id, name, created_at) VALUES ('u1', 'U', 1)",
            "INSERT INTO notifications (id, user_id, title, body, created_at)"
            " VALUES ('n1', 'u1', 't', 'b', 1)",
        ],
    )
    await upgrade_to_head(database_url)
    async with _connected(database_url) as conn:
        rows = (await conn.execute(text("SELECT id, publish_key FROM notifications"))).all()
        assert [tuple(row) for row in rows] == [("n1", None)]
    await downgrade_to(database_url, "0005")
    async with _connected(database_url) as conn:
        assert await conn.scalar(text("SELECT count(*) FROM notifications")) == 1

        def columns(sync: Connection) -> set[str]:
            return {c["name"] for c in inspect(sync).get_columns("notifications")}

        assert "publish_key" not in await conn.run_sync(columns)


async def test_0007_keeps_read_marks_and_leaves_those_from_before_it_alone(
    database_url: str,
) -> None:
    """0007 adds the key a read mark's event is published under until it is kept. Marks from
    before get none (whether their event exists is not known): no start tells them again."""
    await upgrade_to_head(database_url, "0006")
    await _execute(
        database_url,
        [
            "INSERT INTO users (id, name, created_at) VALUES ('u1', 'U', 1)",
            "INSERT INTO notifications (id, user_id, title, body, created_at, read_at)"
            " VALUES ('n1', 'u1', 't', 'b', 1, 2)",
        ],
    )
    await upgrade_to_head(database_url)
    async with _connected(database_url) as conn:
        rows = await conn.execute(text("SELECT id, read_at, read_key FROM notifications"))
        assert [tuple(row) for row in rows.all()] == [("n1", 2, None)]
    await downgrade_to(database_url, "0006")
    async with _connected(database_url) as conn:
        assert await conn.scalar(text("SELECT count(*) FROM notifications")) == 1

        def columns(sync: Connection) -> set[str]:
            return {c["name"] for c in inspect(sync).get_columns("notifications")}

        assert "read_key" not in await conn.run_sync(columns)


async def test_0008_indexes_people_by_when_they_were_made(database_url: str) -> None:
    """A starting server counts the people made within a token's life (`Users.made_since`): 0008
    indexes `users.created_at` for it, and its downgrade takes the index away, keeping the rows."""
    await upgrade_to_head(database_url, "0007")
    await _execute(database_url, ["INSERT INTO users (id, name, created_at) VALUES ('u1', 'U', 1)"])

    def indexes(sync: Connection) -> set[str]:
        return {str(i["name"]) for i in inspect(sync).get_indexes("users")}

    await upgrade_to_head(database_url)
    async with _connected(database_url) as conn:
        assert "ix_users_created_at" in await conn.run_sync(indexes)
    await downgrade_to(database_url, "0007")
    async with _connected(database_url) as conn:
        assert "ix_users_created_at" not in await conn.run_sync(indexes)
        assert await conn.scalar(text("SELECT count(*) FROM users")) == 1


async def test_0009_indexes_a_rooms_memberships_by_when_they_were_made(database_url: str) -> None:
    """A room's member list is paged in the order people joined (`Memberships.members`): 0009
    indexes it, and its downgrade takes the index away, keeping the rows."""
    await upgrade_to_head(database_url, "0008")
    await _execute(
        database_url,
        [
            "INSERT INTO users (id, name, created_at) VALUES ('u1', 'U', 1)",
            "INSERT INTO rooms (name, created_by, created_at) VALUES ('r', 'user:u1', 1)",
            "INSERT INTO memberships (room, user_id, joined_at) VALUES ('r', 'u1', 1)",
        ],
    )

    def indexes(sync: Connection) -> set[str]:
        return {str(i["name"]) for i in inspect(sync).get_indexes("memberships")}

    await upgrade_to_head(database_url)
    async with _connected(database_url) as conn:
        assert "ix_memberships_room_joined_at" in await conn.run_sync(indexes)
    await downgrade_to(database_url, "0008")
    async with _connected(database_url) as conn:
        assert "ix_memberships_room_joined_at" not in await conn.run_sync(indexes)
        assert await conn.scalar(text("SELECT count(*) FROM memberships")) == 1
