"""Idempotency keys of API writes: the first result of a request, kept per (staff, key).

The row is inserted in the same transaction as the events the request caused, so a
request either leaves both or neither; the primary key ``(staff_id, key)`` makes a second
identical request that races the first fail on insert and roll back, writing nothing.
The response body is stored once the first request has rendered it. Keys are kept for
:data:`KEEP` (24 hours, as payment APIs do): long enough for any client retry, and the
table does not grow for ever; the background sweep prunes older ones (:func:`prune`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from engine.store.tables import UTCDateTime, table_of


class ApiRequestRow(SQLModel, table=True):
    __tablename__ = "api_requests"
    staff_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    fingerprint: str
    instance_id: int
    revision: int
    status_code: int
    body: Optional[str] = None
    created_at: datetime = Field(sa_type=UTCDateTime)


R = table_of(ApiRequestRow)
KEEP = timedelta(hours=24)


@dataclass(frozen=True)
class StoredRequest:
    fingerprint: str
    instance_id: int
    revision: int
    status_code: int
    body: Optional[str]


def lookup(conn: Connection, staff_id: str, key: str) -> Optional[StoredRequest]:
    r = conn.execute(sa.select(R.c.fingerprint, R.c.instance_id, R.c.revision, R.c.status_code, R.c.body)
                     .where(R.c.staff_id == staff_id, R.c.key == key)).first()
    return None if r is None else StoredRequest(r.fingerprint, r.instance_id, r.revision, r.status_code, r.body)


class KeyTaken(Exception):
    """Another request with this key committed first; the caller's transaction must roll back."""


def insert(conn: Connection, staff_id: str, key: str, fingerprint: str, instance_id: int, revision: int,
           status_code: int, at: datetime) -> None:
    """Record the request in the caller's transaction (KeyTaken if the key is already used)."""
    try:
        conn.execute(sa.insert(R).values(staff_id=staff_id, key=key, fingerprint=fingerprint,
                                         instance_id=instance_id, revision=revision, status_code=status_code,
                                         created_at=at))
    except IntegrityError as e:
        raise KeyTaken(key) from e


def point_at(conn: Connection, staff_id: str, key: str, instance_id: int, revision: int) -> None:
    """Re-aim a row inserted earlier in the same transaction (a spawned child came first)."""
    conn.execute(sa.update(R).where(R.c.staff_id == staff_id, R.c.key == key)
                 .values(instance_id=instance_id, revision=revision))


def save_body(conn: Connection, staff_id: str, key: str, body: str) -> None:
    conn.execute(sa.update(R).where(R.c.staff_id == staff_id, R.c.key == key, R.c.body.is_(None)).values(body=body))



def prune(conn: Connection, before: datetime) -> int:
    """Forget keys recorded before ``before``; how many. A request repeated with a forgotten
    key is a new request (an If-Match still guards it against acting twice)."""
    return conn.execute(sa.delete(R).where(R.c.created_at < before)).rowcount
