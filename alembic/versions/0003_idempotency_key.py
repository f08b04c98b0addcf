"""The Idempotency-Key of an event, kept with it, so a retry after a restart finds the first event.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_KEY = sa.text("idempotency_key IS NOT NULL")


def upgrade() -> None:
    # A nullable column and an index: SQLite adds both in place, without copying the table.
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.Text(), nullable=True))
        batch.create_index(
            "ix_events_idempotency_key",
            ["idempotency_key"],
            sqlite_where=HAS_KEY,
            postgresql_where=HAS_KEY,
        )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_idempotency_key")
        batch.drop_column("idempotency_key")
