"""Used single-use tickets and revoked sessions, so both hold after a restart.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "used_tickets",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_used_tickets")),
    )
    op.create_index(op.f("ix_used_tickets_expires_at"), "used_tickets", ["expires_at"])
    op.create_table(
        "revocations",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_revocations")),
    )
    op.create_index(op.f("ix_revocations_revoked_at"), "revocations", ["revoked_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_revocations_revoked_at"), table_name="revocations")
    op.drop_table("revocations")
    op.drop_index(op.f("ix_used_tickets_expires_at"), table_name="used_tickets")
    op.drop_table("used_tickets")
