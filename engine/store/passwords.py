"""Staff passwords for the web app: one per staff member, only a scrypt hash is stored.

``sop staff password STAFF`` sets one; the web login accepts it instead of a token. The
hash is ``scrypt$n$r$p$salt$key`` (hex), so the cost can be raised later without
invalidating stored passwords: :func:`check` reads the parameters from the stored value.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from engine.store.tables import UTCDateTime, table_of

# scrypt cost: N=2**15, r=8 uses 32 MiB and about 0.1 s per check (RFC 7914 suggests
# N=2**14 for interactive logins; a front desk logs in a few times a day).
N, R, P, KEY_BYTES = 2 ** 15, 8, 1, 32
MIN_LENGTH = 8


class StaffPasswordRow(SQLModel, table=True):
    __tablename__ = "staff_passwords"
    staff_id: str = Field(primary_key=True)
    password_hash: str
    updated_at: datetime = Field(sa_type=UTCDateTime)


T = table_of(StaffPasswordRow)


def hash_password(password: str, n: int = N, r: int = R, p: int = P) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES,
                         maxmem=256 * 1024 * 1024)
    return f"scrypt${n}${r}${p}${salt.hex()}${key.hex()}"


def matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(bytes.fromhex(key)), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, bytes.fromhex(key))


def set_password(conn: Connection, staff_id: str, password: str, at: datetime) -> None:
    """Store (or replace) the staff member's password hash."""
    if len(password) < MIN_LENGTH:
        from engine.errors import InputError
        raise InputError("password", f"at least {MIN_LENGTH} characters")
    hashed = hash_password(password)
    done = conn.execute(sa.update(T).where(T.c.staff_id == staff_id)
                        .values(password_hash=hashed, updated_at=at)).rowcount
    if not done:
        conn.execute(sa.insert(T).values(staff_id=staff_id, password_hash=hashed, updated_at=at))


def check(conn: Connection, staff_id: str, password: str) -> bool:
    """Whether ``password`` is the staff member's (False when none is set)."""
    stored: Optional[str] = conn.execute(sa.select(T.c.password_hash).where(T.c.staff_id == staff_id)).scalar()
    if stored is None:
        hash_password(password)  # the same work either way: no timing hint of who has a password
        return False
    return matches(password, stored)


def fingerprint(conn: Connection, staff_id: str) -> Optional[str]:
    """A short digest of the stored password hash (None when none is set): it changes when
    the password is set again or removed, which ends the web sessions opened with the old
    one. Not the hash itself: a session cookie is signed, not encrypted."""
    stored: Optional[str] = conn.execute(sa.select(T.c.password_hash).where(T.c.staff_id == staff_id)).scalar()
    return None if stored is None else hashlib.sha256(stored.encode("utf-8")).hexdigest()[:16]


def remove(conn: Connection, staff_id: str) -> bool:
    return bool(conn.execute(sa.delete(T).where(T.c.staff_id == staff_id)).rowcount)
