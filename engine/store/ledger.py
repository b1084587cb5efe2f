"""The ``ledger`` table: one row per committed write transaction that appended events.

Whatever appends events (``repository.append``, the bulk start) notes their
``(instance_id, seq, hash)`` on the connection with :func:`note`; the engine's write
transaction calls :func:`seal` just before it commits, which appends one ledger row
holding them all, chained to the previous row's head (engine/audit_ledger.py). A savepoint
rolled back forgets what was noted inside it (``db.savepoint``), a transaction rolled back
forgets everything (:func:`begin`), so the ledger references exactly the committed events.

Appends are serialised: on SQLite by the write lock every write transaction already holds
(``BEGIN IMMEDIATE``); on PostgreSQL by a transaction-scoped advisory lock taken in
``seal``, the last lock a transaction takes before it commits, so it cannot be part of a
deadlock and is held only for the two statements and the commit. The ledger's ``seq``
primary key backs both up: a second row with the same seq fails, and the whole
transaction with it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.audit_ledger import LEDGER_GENESIS, entries_json, head_hash, leaf_hash
from engine.store.prepared import Prepared
from engine.store.tables import ledger as L

PENDING = "sop_ledger_pending"  # key of Connection.info: the (instance_id, seq, hash) noted so far
_PG_LOCK = 0x736F70_6C6467  # pg_advisory_xact_lock key: "sop" "ldg"

_HEAD = Prepared(sa.select(L.c.seq, L.c.head).order_by(L.c.seq.desc()).limit(sa.bindparam("one"))
                 .offset(sa.bindparam("skip")))
_INSERT = Prepared(sa.insert(L))
_LOCK = Prepared(sa.select(sa.func.pg_advisory_xact_lock(sa.bindparam("k", type_=sa.BigInteger))))


def begin(conn: Connection) -> None:
    """A write transaction begins: nothing noted yet."""
    conn.info[PENDING] = []


def note(conn: Connection, entries: list[tuple[int, int, str]]) -> None:
    """Events appended in this transaction, to be sealed into the ledger at commit."""
    pending = conn.info.get(PENDING)
    if pending is None:
        pending = conn.info[PENDING] = []
    pending.extend(entries)


def seal(conn: Connection, at: datetime) -> Optional[int]:
    """Append the ledger row of what this transaction noted (its seq), or None if nothing."""
    pending = conn.info.pop(PENDING, None)
    if not pending:
        return None
    if conn.dialect.name == "postgresql":
        _LOCK.first(conn, {"k": _PG_LOCK})
    last = _HEAD.first(conn, {"one": 1, "skip": 0})
    seq, prev = (1, LEDGER_GENESIS) if last is None else (int(last[0]) + 1, last[1])
    text = entries_json(pending)
    leaf = leaf_hash(text)
    _INSERT.execute(conn, {"seq": seq, "entries": text, "leaf": leaf, "prev": prev,
                           "head": head_hash(seq, prev, leaf), "recorded_at": at})
    return seq


def mark(conn: Connection) -> Optional[int]:
    pending = conn.info.get(PENDING)
    return None if pending is None else len(pending)


def rollback_to(conn: Connection, at: Optional[int]) -> None:
    pending = conn.info.get(PENDING)
    if pending is not None:
        del pending[at or 0:]


def head(conn: Connection) -> tuple[int, str]:
    """(seq, head) of the newest ledger row; (0, genesis) for an empty ledger."""
    last = conn.execute(sa.select(L.c.seq, L.c.head).order_by(L.c.seq.desc()).limit(1)).first()
    return (0, LEDGER_GENESIS) if last is None else (int(last[0]), str(last[1]))


def iter_rows(conn: Connection, page: int = 1000) -> Iterator[tuple[int, str, str, str, str]]:
    """Every ledger row ``(seq, entries, leaf, prev, head)`` in seq order, a page at a time."""
    after: Any = None
    while True:
        q = sa.select(L.c.seq, L.c.entries, L.c.leaf, L.c.prev, L.c.head).order_by(L.c.seq).limit(page)
        if after is not None:
            q = q.where(L.c.seq > after)
        rows = [tuple(r) for r in conn.execute(q)]
        if not rows:
            return
        yield from rows  # type: ignore[misc]
        after = rows[-1][0]


def queue_checkpoint(conn: Connection, seq: int, recipients: list[str], message: str, at: datetime) -> list[str]:
    """Outbox rows carrying a checkpoint (instance 0, the ledger seq), by e-mail; a recipient
    already sent this checkpoint is skipped (the idempotency key is the checkpoint's)."""
    from engine.store.tables import outbox as O

    keys = {r: f"checkpoint:{seq}:{r}" for r in dict.fromkeys(recipients)}
    have = {k for (k,) in conn.execute(sa.select(O.c.idempotency_key).where(O.c.idempotency_key.in_(keys.values())))}
    rows = [{"instance_id": 0, "seq": seq, "recipient": r, "channel": "email", "message": message,
             "idempotency_key": k, "created_at": at, "next_attempt_at": at} for r, k in keys.items() if k not in have]
    if rows:
        conn.execute(sa.insert(O), rows)
    return [r["recipient"] for r in rows]
