"""instances.watchers and instances.branches (issue 14).

``watchers``: who watches a case (``sop watch``, ``watch:`` effects, reassignment), a JSON
list of staff ids, the projection of WatcherAdded/WatcherRemoved events. ``branches``: the
open branches of the parallel state an instance is in (engine/spec/parallel.py), a JSON
object. Databases from before had neither, so every existing row is ``[]`` and ``{}``.

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

_COLUMNS = {"watchers": "[]", "branches": "{}"}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    have = {c["name"] for c in inspector.get_columns("instances")}
    missing = [name for name in _COLUMNS if name not in have]  # a create_all database has them (adopted)
    if missing:
        with op.batch_alter_table("instances") as batch:
            for name in missing:
                batch.add_column(sa.Column(name, sa.String(), nullable=False, server_default=_COLUMNS[name]))
    indexes = {i["name"] for i in inspector.get_indexes("instances")}
    for name, column, empty in (("ix_instances_in_branches", "branches", "{}"), ("ix_instances_watched", "watchers", "[]")):
        if name not in indexes:  # partial: only the instances in branches, or watched
            op.create_index(name, "instances", ["status"], sqlite_where=sa.text(f"{column} != '{empty}'"),
                            postgresql_where=sa.text(f"{column} <> '{empty}'"))


def downgrade() -> None:
    op.drop_index("ix_instances_watched", table_name="instances")
    op.drop_index("ix_instances_in_branches", table_name="instances")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("branches")
        batch.drop_column("watchers")
