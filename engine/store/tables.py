"""Table models (SQLModel). Names end in ``Row``; JSON payloads are stored as text.

The event table's primary key is ``(instance_id, seq)``: a second writer appending the
same ``seq`` fails on insert, which is the concurrency check of last resort (the
instance row's ``revision`` is the first).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (naive text) and PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        """A stored value that is not a time at all (a number written into the column) is a
        ValueError like any unreadable time, so history, replay and verify report it."""
        process = super().result_processor(dialect, coltype)
        if process is None:
            return None

        def read(value: Any) -> Optional[datetime]:
            try:
                return process(value)
            except TypeError:
                raise ValueError(f"not a time: {value!r}") from None

        return read


def _dt(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class ProcedureVersionRow(SQLModel, table=True):
    __tablename__ = "procedure_versions"
    procedure: str = Field(primary_key=True)
    version: str = Field(primary_key=True)
    snapshot: str
    first_used_at: datetime = _dt()


class InstanceRow(SQLModel, table=True):
    __tablename__ = "instances"
    __table_args__ = (
        sa.Index("ix_instances_assignee_open", "assignee", "status"),
        sa.Index("ix_instances_role_open", "assignee_role", "status"),
        sa.Index("ix_instances_procedure_state", "procedure", "state"),
        sa.Index("ix_instances_parent", "parent_id"),
        # The few instances inside parallel branches, for the inboxes' branch tasks
        # (queries.branch_tasks): their scan follows how many are in branches, not the table.
        sa.Index("ix_instances_in_branches", "status", sqlite_where=sa.text("branches != '{}'"),
                 postgresql_where=sa.text("branches <> '{}'")),
        # The watched instances, for "cases I watch" (queries.watched_by).
        sa.Index("ix_instances_watched", "status", sqlite_where=sa.text("watchers != '[]'"),
                 postgresql_where=sa.text("watchers <> '[]'")),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    procedure: str
    version: str
    state: str
    status: str = "active"
    assignee: Optional[str] = None
    assignee_role: Optional[str] = None
    building: Optional[str] = None
    data: str = "{}"
    clocks: str = "{}"
    # Who watches the case (WatcherAdded / WatcherRemoved): a JSON list of staff ids.
    watchers: str = Field(default="[]", sa_column_kwargs={"server_default": "[]"})
    # The open parallel branches (engine/spec/parallel.py): a JSON object, {} outside one.
    branches: str = Field(default="{}", sa_column_kwargs={"server_default": "{}"})
    parent_id: Optional[int] = None
    revision: int = 0
    started_at: datetime = _dt()
    last_occurred_at: datetime = _dt()
    last_hash: str = ""
    external_key: Optional[str] = Field(default=None, sa_column_kwargs={"unique": True})


class TimerRow(SQLModel, table=True):
    """Projection of every SLA clock and timer, indexed by when the sweep must next act.

    ``next_fire_at`` is NULL once nothing more is due; the sweep's query walks the
    partial index on it, so its cost follows the number due, not the number stored.
    """

    __tablename__ = "timers"
    __table_args__ = (
        sa.Index("ix_timers_next_fire", "next_fire_at", sqlite_where=sa.text("next_fire_at IS NOT NULL"),
                 postgresql_where=sa.text("next_fire_at IS NOT NULL")),
        sa.Index("ix_timers_report", "procedure", "name", "started_at"),
    )
    instance_id: int = Field(primary_key=True)
    name: str = Field(primary_key=True)
    procedure: str
    kind: str
    status: str
    due_at: Optional[datetime] = _dt(default=None, nullable=True)
    next_fire_at: Optional[datetime] = _dt(default=None, nullable=True)
    next_kind: Optional[str] = None
    started_at: datetime = _dt()
    ended_at: Optional[datetime] = _dt(default=None, nullable=True)
    breached_at: Optional[datetime] = _dt(default=None, nullable=True)
    assignee: Optional[str] = None
    provisional: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    instance_id: int = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    type: str
    actor: str
    role: Optional[str] = None
    occurred_at: datetime = _dt()
    recorded_at: datetime = _dt()
    data: str = "{}"
    prev_hash: str
    hash: str


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_pending", "status", "next_attempt_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    instance_id: int
    seq: int
    recipient: str
    channel: Optional[str] = None
    message: str
    idempotency_key: str = Field(sa_column_kwargs={"unique": True})
    status: str = "pending"
    attempts: int = 0
    created_at: datetime = _dt()
    next_attempt_at: datetime = _dt()
    last_error: Optional[str] = None


class LedgerRow(SQLModel, table=True):
    """The store-wide chain (engine/store/ledger.py): one row per committed transaction that
    appended events, in commit order. ``entries`` is the canonical JSON list of the
    ``[instance_id, seq, hash]`` of those events, ``leaf`` its SHA-256, ``head`` the hash of
    ``[seq, prev, leaf]`` and ``prev`` the head before it. ``seq`` is given, never generated:
    two writers appending the same seq fail on the key."""

    __tablename__ = "ledger"
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    entries: str
    leaf: str
    prev: str
    head: str
    recorded_at: datetime = _dt()


class LedgerHeadRow(SQLModel, table=True):
    """The ledger's newest row, as one row (``key`` 1): where appends serialise (on
    PostgreSQL its row lock, taken by the one statement that appends, see
    engine/store/ledger.py). Verification never trusts it: it recomputes the ledger."""

    __tablename__ = "ledger_head"
    key: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int
    prev: str
    head: str


class MetaRow(SQLModel, table=True):
    """Facts about the database itself (``created_by``: which command made the file; the
    demo refuses to recreate a file it did not make)."""

    __tablename__ = "sop_meta"
    key: str = Field(primary_key=True)
    value: str


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a table model (the stores query through Core, not the ORM)."""
    return model.__table__  # type: ignore[attr-defined]  # set by SQLModel, not declared


instances = table_of(InstanceRow)
events = table_of(EventRow)
procedure_versions = table_of(ProcedureVersionRow)
outbox = table_of(OutboxRow)
timers = table_of(TimerRow)
ledger = table_of(LedgerRow)
ledger_head = table_of(LedgerHeadRow)
sop_meta = table_of(MetaRow)
