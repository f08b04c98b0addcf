"""People's ids up to 64 characters, as a token's `sub` may be (UUIDs are 36): 32 before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("users", "id"), ("memberships", "user_id"), ("notifications", "user_id"))
NAMED = 5
"""How many of the ids too long for a downgrade its error names."""


def upgrade() -> None:
    _resize(32, 64)


def downgrade() -> None:
    _refuse_ids_too_long(32)
    _resize(64, 32)


def _refuse_ids_too_long(width: int) -> None:
    """Narrowing would fail half-way on PostgreSQL (`value too long`), and on SQLite keep ids the
    old schema says cannot exist: refuse first, naming them. Ids are keys: truncating them could
    merge two people. Offline (`--sql`) there is nothing to read: PostgreSQL's own check stands."""
    if context.is_offline_mode():
        return
    bind = op.get_bind()
    found: list[str] = []
    for table, column in COLUMNS:
        query = f"SELECT DISTINCT {column} FROM {table} WHERE length({column}) > {width}"
        ids = [row[0] for row in bind.exec_driver_sql(query)]
        if ids:
            shown = ", ".join(repr(each) for each in sorted(ids)[:NAMED])
            more = f" and {len(ids) - NAMED} more" if len(ids) > NAMED else ""
            found.append(f"{table}.{column}: {shown}{more}")
    if found:
        raise RuntimeError(
            f"cannot downgrade 0004 -> 0003: person ids over {width} characters would not fit "
            f"({'; '.join(found)}). Nothing was changed. Delete those people (their memberships "
            "and notifications go with them) or keep revision 0004."
        )


def _resize(old: int, new: int) -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite and context.is_offline_mode():
        # The script rebuilds tables (batch mode): its reader must run it with foreign keys off,
        # or dropping the old `users` would delete every membership and notification in cascade.
        op.execute("PRAGMA foreign_keys=OFF")
    elif sqlite and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        # SQLite rebuilds each table (batch mode): dropping the old `users` with foreign keys
        # enforced would delete every membership and notification in cascade.
        raise RuntimeError("foreign keys must be off while SQLite tables are rebuilt")
    tables = _tables(old) if context.is_offline_mode() else {}
    for table, column in COLUMNS:
        # Offline there is no database to reflect: batch mode copies the table as 0001 made it.
        with op.batch_alter_table(table, copy_from=tables.get(table)) as batch:
            batch.alter_column(
                column,
                existing_type=sa.String(length=old),
                type_=sa.String(length=new),
                existing_nullable=False,
            )


def _tables(width: int) -> dict[str, sa.Table]:
    """The people tables as they stand before the resize, person ids `width` wide."""
    metadata = sa.MetaData()
    person = sa.String(length=width)
    sa.Table(
        "users",
        metadata,
        sa.Column("id", person, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    sa.Table(
        "rooms",
        metadata,
        sa.Column("name", sa.String(length=123), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_rooms"),
    )
    sa.Table(
        "memberships",
        metadata,
        sa.Column("room", sa.String(length=123), nullable=False),
        sa.Column("user_id", person, nullable=False),
        sa.Column("joined_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room"], ["rooms.name"], name="fk_memberships_room_rooms", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_memberships_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("room", "user_id", name="pk_memberships"),
        sa.Index("ix_memberships_user_id", "user_id"),
    )
    sa.Table(
        "notifications",
        metadata,
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", person, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("read_at", sa.Double(), nullable=True),
        sa.Column("event_channel", sa.String(length=128), nullable=True),
        sa.Column("event_seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_notifications_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.Index("ix_notifications_user_id_created_at", "user_id", "created_at"),
        sa.Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
    )
    return {name: metadata.tables[name] for name in ("users", "memberships", "notifications")}
