"""API tokens: one staff member per token; only a hash of the token is ever stored.

A token is 32 random bytes (``sop_`` + URL-safe base64), so a plain SHA-256 is enough to
store it: there is nothing to brute-force, and a leaked table does not let anyone sign in.
The plain token is returned once, by :func:`create`, and never again.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from engine.store.tables import UTCDateTime, table_of

PREFIX = "sop_"


class ApiTokenRow(SQLModel, table=True):
    __tablename__ = "api_tokens"
    id: Optional[int] = Field(default=None, primary_key=True)
    staff_id: str = Field(index=True)
    token_hash: str = Field(sa_column_kwargs={"unique": True})
    label: str = ""
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)


T = table_of(ApiTokenRow)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    staff_id: str
    label: str
    created_at: datetime
    revoked_at: Optional[datetime]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(conn: Connection, staff_id: str, at: datetime, label: str = "") -> tuple[int, str]:
    """A new token for ``staff_id``: (its id, the plain token — shown once, not stored)."""
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(sa.insert(T).values(staff_id=staff_id, token_hash=hash_token(token), label=label,
                                                created_at=at).returning(T.c.id)).scalar_one()
    return int(token_id), token


def staff_for(conn: Connection, token: str) -> Optional[str]:
    """The staff id a live token belongs to, or None (unknown or revoked)."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    return conn.execute(sa.select(T.c.staff_id).where(T.c.token_hash == hash_token(token),
                                                       T.c.revoked_at.is_(None))).scalar()


def live_token(conn: Connection, token: str) -> Optional[tuple[int, str]]:
    """(id, staff id) of a live token, or None (unknown or revoked): what a web session
    remembers of the token it was opened with."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = conn.execute(sa.select(T.c.id, T.c.staff_id).where(T.c.token_hash == hash_token(token),
                                                             T.c.revoked_at.is_(None))).first()
    return None if row is None else (int(row.id), str(row.staff_id))


def is_live(conn: Connection, token_id: int, staff_id: str) -> bool:
    """Whether token ``token_id`` of ``staff_id`` is still live (not revoked)."""
    return conn.execute(sa.select(T.c.id).where(T.c.id == token_id, T.c.staff_id == staff_id,
                                                T.c.revoked_at.is_(None))).first() is not None


def revoke(conn: Connection, staff_id: str, at: datetime, token_id: Optional[int] = None) -> int:
    """Revoke the staff member's live tokens (or only ``token_id``); how many were revoked."""
    stmt = sa.update(T).where(T.c.staff_id == staff_id, T.c.revoked_at.is_(None))
    if token_id is not None:
        stmt = stmt.where(T.c.id == token_id)
    return int(conn.execute(stmt.values(revoked_at=at)).rowcount)


def listing(conn: Connection, staff_id: Optional[str] = None) -> list[TokenInfo]:
    stmt = sa.select(T.c.id, T.c.staff_id, T.c.label, T.c.created_at, T.c.revoked_at).order_by(T.c.id)
    if staff_id:
        stmt = stmt.where(T.c.staff_id == staff_id)
    return [TokenInfo(r.id, r.staff_id, r.label, r.created_at, r.revoked_at) for r in conn.execute(stmt)]
