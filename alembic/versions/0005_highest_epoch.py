"""The highest Redis epoch, remembered in a row of its own: a node's start read it from
`max(seq)` of the events table before, a scan of the whole archive.

Left empty here: the first node to start reads the archive once and fills it (epoch.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "highest_epoch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_highest_epoch"),
    )


def downgrade() -> None:
    op.drop_table("highest_epoch")
