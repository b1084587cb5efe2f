"""Queuing notifications: the ``outbox`` rows a command's ``NotificationQueued`` event
asks for, written in the command's transaction (engine/store/outbox.py delivers them)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from engine.store.tables import outbox as O

_ENQUEUE = sa.insert(O)
COLUMNS = ("instance_id", "seq", "recipient", "channel", "message", "idempotency_key", "status", "attempts",
           "created_at", "next_attempt_at", "last_error")  # an outbox row's, but its generated id


def outbox_rows(instance_id: int, seq: int, recipients: list[str], message: str, channel: Optional[str],
                at: datetime) -> list[dict[str, object]]:
    """The outbox rows of one ``NotificationQueued`` event, every column of COLUMNS given
    (every backend inserts exactly these; the idempotency key is the step's and recipient's)."""
    return [{"instance_id": instance_id, "seq": seq, "recipient": r, "channel": channel, "message": message,
             "idempotency_key": f"{instance_id}:{seq}:{r}", "status": "pending", "attempts": 0, "created_at": at,
             "next_attempt_at": at, "last_error": None} for r in recipients]


def enqueue(conn: Connection, instance_id: int, seq: int, recipients: list[str], message: str,
            channel: Optional[str], at: datetime) -> None:
    """Queue one notification's rows (through Core; the driver backends have their own)."""
    if recipients:
        conn.execute(_ENQUEUE, outbox_rows(instance_id, seq, recipients, message, channel, at))


def queue_once(conn: Connection, rows: list[dict[str, object]]) -> list[str]:
    """Insert outbox ``rows`` (full row values, each with its ``idempotency_key``), skipping
    any whose key is queued already; returns the recipients actually queued.

    ON CONFLICT rather than a look first: two workers doing the same once-only send at once
    on PostgreSQL would both find no row and the second insert would fail on the key
    (tests/test_multiworker.py). Used for the notices that belong to no instance step
    (calendar warnings, periodic reports)."""
    insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    queued: list[str] = []
    for row in rows:
        stmt = insert(O).values(**row).on_conflict_do_nothing(index_elements=[O.c.idempotency_key])
        if conn.execute(stmt).rowcount:
            queued.append(str(row["recipient"]))
    return queued
