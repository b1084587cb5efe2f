"""The ``ledger`` table: one row per committed write transaction that appended events.

Whatever appends events (``log.append``, the bulk start) notes their
``(instance_id, seq, hash)`` on the connection with :func:`note`; the engine's write
transaction calls :func:`seal` just before it commits, which appends one ledger row
holding them all, chained to the previous row's head (engine/audit_ledger.py). A savepoint
rolled back forgets what was noted inside it (``db.savepoint``), a transaction rolled back
forgets everything (:func:`begin`), so the ledger references exactly the committed events.

The newest row's seq and head are kept in ``ledger_head`` (one row), where appends
serialise: on SQLite the write lock every write transaction already holds (``BEGIN
IMMEDIATE``) does it; on PostgreSQL one statement moves the head (locking its row) and
appends the ledger row, in one round trip. That is the last lock a transaction takes
before it commits, so it cannot be part of a deadlock, and it is held only for that
statement and the commit. The ledger's ``seq`` primary key backs both up: a second row
with the same seq fails, and the whole transaction with it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.audit_ledger import LEDGER_GENESIS, entries_json, head_hash, leaf_hash
from engine.store.prepared import Prepared
from engine.store.tables import ledger as L
from engine.store.tables import ledger_head as H

PENDING = "sop_ledger_pending"  # key of Connection.info: the (instance_id, seq, hash) noted so far

_HEAD = Prepared(sa.select(H.c.seq, H.c.head).where(H.c.key == sa.bindparam("one")))
_MOVE_HEAD = Prepared(sa.update(H).where(H.c.key == sa.bindparam("one")))
_INSERT = Prepared(sa.insert(L))
# PostgreSQL: move the head and append the row in one statement, hashing in SQL exactly as
# audit_ledger.head_hash does (canonical JSON of [seq, prev, leaf]: hex strings need no
# escaping). The UPDATE waits for the head row's lock and then works on the newest committed
# head (READ COMMITTED re-reads a row it waited for), so concurrent appends chain in commit
# order; the lock is the last one the transaction takes and is held until its commit.
_PG_APPEND = (
    "WITH h AS (UPDATE ledger_head SET seq = seq + 1, prev = head, "
    "head = encode(sha256(convert_to('[' || (seq + 1) || ',\"' || head || '\",\"' || {leaf} || '\"]', 'UTF8')), "
    "'hex') WHERE key = 1 RETURNING seq, prev, head) "
    "INSERT INTO ledger (seq, entries, leaf, prev, head, recorded_at) "
    "SELECT seq, {entries}, {leaf}, prev, head, {at} FROM h RETURNING seq")
_PG_DRIVER_SQL = _PG_APPEND.format(leaf="$1::text", entries="$2::text", at="$3::timestamptz")
_PG_CORE_SQL = sa.text(_PG_APPEND.format(leaf="CAST(:leaf AS text)", entries="CAST(:entries AS text)",
                                         at="CAST(:at AS timestamptz)"))


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
    text = entries_json(pending)
    leaf = leaf_hash(text)
    if conn.dialect.name == "postgresql":
        return _pg_append(conn, text, leaf, at)
    row = _HEAD.first(conn, {"one": 1})
    seq, prev = (1, LEDGER_GENESIS) if row is None else (int(row[0]) + 1, row[1])
    head = head_hash(seq, prev, leaf)
    _INSERT.execute(conn, {"seq": seq, "entries": text, "leaf": leaf, "prev": prev, "head": head, "recorded_at": at})
    if row is None:
        conn.execute(sa.insert(H).values(key=1, seq=seq, prev=prev, head=head))
    else:
        _MOVE_HEAD.execute(conn, {"one": 1, "seq": seq, "prev": prev, "head": head})
    return seq


def _pg_append(conn: Connection, text: str, leaf: str, at: datetime) -> int:
    if getattr(conn, "sop_driver", None) is not None:  # the psycopg fast path (prepared.Prepared)
        from engine.store.db import as_sqlalchemy_error
        from engine.store.prepared import _kept_cursor

        args = [leaf, text, at]
        try:
            row = _kept_cursor(conn).execute(_PG_DRIVER_SQL, args).fetchone()
        except conn.dialect.loaded_dbapi.Error as err:
            raise as_sqlalchemy_error(conn.dialect, _PG_DRIVER_SQL, args, err) from err
    else:
        row = conn.execute(_PG_CORE_SQL, {"leaf": leaf, "entries": text, "at": at}).first()
    if row is None:
        raise RuntimeError("the ledger_head row is missing (see migration 0002)")  # a broken schema: a bug
    return int(row[0])


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
