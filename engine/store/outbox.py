"""Delivering the outbox: claim due rows under a lease, record every attempt, finish them.

Row life: ``pending`` → (claimed) ``sending`` → ``sent`` | ``pending`` again (retry at
``next_attempt_at``) | ``failed`` (permanent, or out of attempts) | ``held`` (the worker
died mid-delivery and the configuration says not to resend blindly).

While a row is ``sending``, ``next_attempt_at`` is the end of its lease; a row still
``sending`` after its lease belongs to a worker that died, and is claimed again. A claim
is a compare-and-set on ``attempts``, so two workers never both claim the same try; the
attempt is counted and written *before* anything is sent, so a crash mid-delivery leaves
a trace (``outbox_attempts`` row with outcome ``started``) that the next claim sees.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from engine.store.tables import UTCDateTime, table_of
from engine.store.tables import outbox as O

PENDING, SENDING, SENT, FAILED, HELD = "pending", "sending", "sent", "failed", "held"


class OutboxAttemptRow(SQLModel, table=True):
    __tablename__ = "outbox_attempts"
    __table_args__ = (sa.UniqueConstraint("outbox_id", "attempt"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    outbox_id: int = Field(index=True)
    attempt: int
    channel: Optional[str] = None
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    outcome: str = "started"
    error: Optional[str] = None


A = table_of(OutboxAttemptRow)


@dataclass(frozen=True)
class Claimed:
    """One claimed notification; ``attempt`` is this try's number (1 = first)."""

    id: int
    instance_id: int
    seq: int
    recipient: str
    channel: Optional[str]
    message: str
    idempotency_key: str
    attempt: int
    interrupted: bool  # the previous try was claimed but never finished (its worker died)
    created_at: datetime


def claim_due(conn: Connection, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
    """Claim up to ``limit`` due rows for this worker until ``lease_until``."""
    stmt = (sa.select(O.c.id, O.c.instance_id, O.c.seq, O.c.recipient, O.c.channel, O.c.message,
                      O.c.idempotency_key, O.c.status, O.c.attempts, O.c.created_at)
            .where(O.c.status.in_((PENDING, SENDING)), O.c.next_attempt_at <= now)
            .order_by(O.c.next_attempt_at, O.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    claimed = []
    for r in conn.execute(stmt).all():
        won = conn.execute(sa.update(O).where(O.c.id == r.id, O.c.attempts == r.attempts, O.c.status == r.status)
                           .values(status=SENDING, attempts=r.attempts + 1, next_attempt_at=lease_until)).rowcount
        if won != 1:
            continue
        conn.execute(sa.insert(A).values(outbox_id=r.id, attempt=r.attempts + 1, started_at=now))
        claimed.append(Claimed(r.id, r.instance_id, r.seq, r.recipient, r.channel, r.message, r.idempotency_key,
                               r.attempts + 1, r.status == SENDING, r.created_at))
    return claimed


def finish(conn: Connection, c: Claimed, status: str, at: datetime, error: Optional[str] = None,
           next_attempt_at: Optional[datetime] = None, channel: Optional[str] = None) -> bool:
    """Close an attempt; False if the lease was lost (another worker claimed the row since)."""
    outcome = {PENDING: "retry"}.get(status, status)
    conn.execute(sa.update(A).where(A.c.outbox_id == c.id, A.c.attempt == c.attempt)
                 .values(finished_at=at, outcome=outcome, error=error, channel=channel))
    values: dict[str, object] = {"status": status, "last_error": error}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    return conn.execute(sa.update(O).where(O.c.id == c.id, O.c.attempts == c.attempt, O.c.status == SENDING)
                        .values(**values)).rowcount == 1


def counts(conn: Connection) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in conn.execute(sa.select(O.c.status, sa.func.count()).group_by(O.c.status))}


def rows(conn: Connection, status: Optional[str] = None, limit: int = 100) -> list[sa.Row]:
    stmt = sa.select(O).order_by(O.c.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(O.c.status == status)
    return list(conn.execute(stmt))


def attempts_of(conn: Connection, outbox_id: int) -> list[sa.Row]:
    return list(conn.execute(sa.select(A).where(A.c.outbox_id == outbox_id).order_by(A.c.attempt)))


def status_of(conn: Connection, outbox_id: int) -> Optional[str]:
    """The delivery status of one notification; None if there is no such notification."""
    return conn.execute(sa.select(O.c.status).where(O.c.id == outbox_id)).scalar_one_or_none()


def requeue(conn: Connection, outbox_id: int) -> bool:
    """Send a failed or held notification again (a person decided to), at the next pass."""
    return conn.execute(sa.update(O).where(O.c.id == outbox_id, O.c.status.in_((FAILED, HELD)))
                        .values(status=PENDING, next_attempt_at=O.c.created_at)).rowcount == 1
