"""People's ids up to 64 characters, as a token's `sub` may be (UUIDs are 36): 32 before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("users", "id"), ("memberships", "user_id"), ("notifications", "user_id"))


def upgrade() -> None:
    _resize(32, 64)


def downgrade() -> None:
    _resize(64, 32)


def _resize(old: int, new: int) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        # SQLite rebuilds each table (batch mode): dropping the old `users` with foreign keys
        # enforced would delete every membership and notification in cascade.
        raise RuntimeError("foreign keys must be off while SQLite tables are rebuilt")
    for table, column in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                existing_type=sa.String(length=old),
                type_=sa.String(length=new),
                existing_nullable=False,
            )
