"""A notification marked read keeps the key its `notification.read` event is published under
until the event is kept: a server killed between the mark and the event left it read with the
person's other clients never told; one starting now tells them, under that key.

Rows from before stay as they are (no key): whether their event exists is not known.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IS_READ_UNTOLD = sa.text("read_key IS NOT NULL")


def upgrade() -> None:
    # A nullable column and a partial index: SQLite adds both in place, without copying the table.
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("read_key", sa.Text(), nullable=True))
        batch.create_index(
            "ix_notifications_read_untold",
            ["read_at"],
            sqlite_where=IS_READ_UNTOLD,
            postgresql_where=IS_READ_UNTOLD,
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_read_untold")
        batch.drop_column("read_key")
