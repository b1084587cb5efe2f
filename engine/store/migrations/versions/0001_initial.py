"""The initial schema: instances and their event log, pinned procedure versions, timers,
the outbox and its delivery attempts, API tokens and idempotency keys.

Written by hand from the models (``engine.store.tables``, ``outbox``, ``tokens``,
``idempotency``) in plain SQLAlchemy types: ``UTCDateTime`` is stored as
``DateTime(timezone=True)`` and SQLModel's ``AutoString`` as ``String``, so this file
imports neither sqlmodel nor the engine. ``tests/test_migrations.py`` checks that the
result is exactly the models' schema on SQLite and PostgreSQL.

Databases created before migrations existed (by ``create_all``) already hold some of
these tables: each table is created only where it is missing, so such a database is
adopted by upgrading it like any other.

Revision ID: 0001
Revises:
Create Date: 2025-10-20
"""
from __future__ import annotations

from typing import Callable

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def _create(name: str, *columns: sa.schema.SchemaItem, indexes: tuple[Callable[[], None], ...] = ()) -> None:
    if sa.inspect(op.get_bind()).has_table(name):
        return
    op.create_table(name, *columns)
    for make in indexes:
        make()


def upgrade() -> None:
    _create(
        "procedure_versions",
        sa.Column("procedure", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("snapshot", sa.String(), nullable=False),
        sa.Column("first_used_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("procedure", "version"),
    )
    _create(
        "instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("procedure", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("assignee", sa.String(), nullable=True),
        sa.Column("assignee_role", sa.String(), nullable=True),
        sa.Column("building", sa.String(), nullable=True),
        sa.Column("data", sa.String(), nullable=False),
        sa.Column("clocks", sa.String(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("last_occurred_at", TIME, nullable=False),
        sa.Column("last_hash", sa.String(), nullable=False),
        sa.Column("external_key", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_key"),
        indexes=(
            lambda: op.create_index("ix_instances_assignee_open", "instances", ["assignee", "status"]),
            lambda: op.create_index("ix_instances_role_open", "instances", ["assignee_role", "status"]),
            lambda: op.create_index("ix_instances_procedure_state", "instances", ["procedure", "state"]),
            lambda: op.create_index("ix_instances_parent", "instances", ["parent_id"]),
        ),
    )
    _create(
        "events",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=True),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("recorded_at", TIME, nullable=False),
        sa.Column("data", sa.String(), nullable=False),
        sa.Column("prev_hash", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "seq"),
    )
    _create(
        "timers",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("procedure", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("due_at", TIME, nullable=True),
        sa.Column("next_fire_at", TIME, nullable=True),
        sa.Column("next_kind", sa.String(), nullable=True),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("ended_at", TIME, nullable=True),
        sa.Column("breached_at", TIME, nullable=True),
        sa.Column("assignee", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("instance_id", "name"),
        indexes=(
            # Partial: the sweep walks only the rows that still have something due.
            lambda: op.create_index("ix_timers_next_fire", "timers", ["next_fire_at"],
                                    sqlite_where=sa.text("next_fire_at IS NOT NULL"),
                                    postgresql_where=sa.text("next_fire_at IS NOT NULL")),
            lambda: op.create_index("ix_timers_report", "timers", ["procedure", "name", "started_at"]),
        ),
    )
    _create(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        indexes=(lambda: op.create_index("ix_outbox_pending", "outbox", ["status", "next_attempt_at"]),),
    )
    _create(
        "outbox_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("outbox_id", "attempt"),
        indexes=(lambda: op.create_index("ix_outbox_attempts_outbox_id", "outbox_attempts", ["outbox_id"]),),
    )
    _create(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        indexes=(lambda: op.create_index("ix_api_tokens_staff_id", "api_tokens", ["staff_id"]),),
    )
    _create(
        "api_requests",
        sa.Column("staff_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("staff_id", "key"),
    )


def downgrade() -> None:
    for name in ("api_requests", "api_tokens", "outbox_attempts", "outbox", "timers", "events", "instances",
                 "procedure_versions"):
        op.drop_table(name)
