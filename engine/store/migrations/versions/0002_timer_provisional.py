"""timers.provisional: the clock's due time was computed on a provisional calendar year.

A year no State Council notice is known for gets a provisional calendar
(engine/statutory.py); ``sop sla report`` names the clocks that depend on one, so the
projection carries the flag. Databases from before hold no such clock (the engine then
refused those dates), so every existing row is ``false``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("timers") as batch:
        batch.add_column(sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("timers") as batch:
        batch.drop_column("provisional")
