"""A notification keeps the key its event is published under until the event is attached: a
server killed between the row and the event left a row no one was told of; one starting now
publishes such rows again, under that key.

Rows from before stay as they are (no key): whether their event exists is not known.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IS_UNSENT = sa.text("publish_key IS NOT NULL")


def upgrade() -> None:
    # A nullable column and a partial index: SQLite adds both in place, without copying the table.
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("publish_key", sa.Text(), nullable=True))
        batch.create_index(
            "ix_notifications_unsent",
            ["created_at"],
            sqlite_where=IS_UNSENT,
            postgresql_where=IS_UNSENT,
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_unsent")
        batch.drop_column("publish_key")
