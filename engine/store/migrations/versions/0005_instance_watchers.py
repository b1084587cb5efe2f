"""instances.watchers: who watches a case (``sop watch``, ``watch:`` effects, reassignment).

Escalation moves a task away from its worker; the watchers column keeps the people who
still follow it (a JSON list of staff ids, the projection of WatcherAdded/WatcherRemoved
events). Databases from before had no watchers, so every existing row is ``[]``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("instances")}
    if "watchers" in columns:  # a database made by create_all from these models (adopted)
        return
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("watchers", sa.String(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("watchers")
