"""A room's memberships are indexed by when they were made: the member list is paged in the order
people joined (app/store/repositories.py), which without it sorts every membership of the room for
each page.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-11
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_memberships_room_joined_at", "memberships", ["room", "joined_at", "user_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_memberships_room_joined_at", table_name="memberships")
