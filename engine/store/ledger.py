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

Sealing is a store backend's (``store.seal``, engine/store/backends/): the statements here
are the general backend's (SQLAlchemy Core); what to seal (:func:`take_pending`) and
PostgreSQL's one statement (:data:`PG_APPEND`) are shared.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.audit_ledger import LEDGER_GENESIS, entries_json, head_hash, leaf_hash
from engine.store.tables import ledger as L
from engine.store.tables import ledger_head as H

PENDING = "sop_ledger_pending"  # key of Connection.info: the (instance_id, seq, hash) noted so far

_HEAD = sa.select(H.c.seq, H.c.head).where(H.c.key == 1)
_MOVE_HEAD = sa.update(H).where(H.c.key == 1)
_INSERT = sa.insert(L)
# PostgreSQL: move the head and append the row in one statement, hashing in SQL exactly as
# audit_ledger.head_hash does (canonical JSON of [seq, prev, leaf]: hex strings need no
# escaping). The UPDATE waits for the head row's lock and then works on the newest committed
# head (READ COMMITTED re-reads a row it waited for), so concurrent appends chain in commit
# order; the lock is the last one the transaction takes and is held until its commit.
PG_APPEND = (
    "WITH h AS (UPDATE ledger_head SET seq = seq + 1, prev = head, "
    "head = encode(sha256(convert_to('[' || (seq + 1) || ',\"' || head || '\",\"' || {leaf} || '\"]', 'UTF8')), "
    "'hex') WHERE key = 1 RETURNING seq, prev, head) "
    "INSERT INTO ledger (seq, entries, leaf, prev, head, recorded_at) "
    "SELECT seq, {entries}, {leaf}, prev, head, {at} FROM h RETURNING seq")
_PG_CORE_SQL = sa.text(PG_APPEND.format(leaf="CAST(:leaf AS text)", entries="CAST(:entries AS text)",
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


def take_pending(conn: Connection) -> Optional[tuple[str, str]]:
    """What this transaction noted, taken for sealing: the ledger row's ``entries`` text and
    its leaf hash; None if nothing was noted."""
    pending = conn.info.pop(PENDING, None)
    if not pending:
        return None
    text = entries_json(pending)
    return text, leaf_hash(text)


def next_row(head: Optional[tuple[int, str]], leaf: str) -> tuple[int, str, str]:
    """The (seq, prev, head) of the ledger row after ``head`` (the newest (seq, head), None
    for an empty ledger) holding ``leaf``."""
    seq, prev = (1, LEDGER_GENESIS) if head is None else (int(head[0]) + 1, head[1])
    return seq, prev, head_hash(seq, prev, leaf)


def seal(conn: Connection, at: datetime) -> Optional[int]:
    """Append the ledger row of what this transaction noted (its seq), or None if nothing (Core)."""
    taken = take_pending(conn)
    if taken is None:
        return None
    text, leaf = taken
    if conn.dialect.name == "postgresql":
        row = conn.execute(_PG_CORE_SQL, {"leaf": leaf, "entries": text, "at": at}).first()
        if row is None:
            raise RuntimeError("the ledger_head row is missing (see migration 0002)")  # a broken schema: a bug
        return int(row[0])
    head = conn.execute(_HEAD).first()
    seq, prev, new_head = next_row(None if head is None else (head[0], head[1]), leaf)
    conn.execute(_INSERT, {"seq": seq, "entries": text, "leaf": leaf, "prev": prev, "head": new_head,
                           "recorded_at": at})
    if head is None:
        conn.execute(sa.insert(H).values(key=1, seq=seq, prev=prev, head=new_head))
    else:
        conn.execute(_MOVE_HEAD, {"seq": seq, "prev": prev, "head": new_head})
    return seq


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
        yield from rows
        after = rows[-1][0]


def queue_checkpoint(conn: Connection, seq: int, recipients: list[str], message: str, at: datetime) -> list[str]:
    """Outbox rows carrying a checkpoint (instance 0, the ledger seq), by e-mail; a recipient
    already sent this checkpoint is skipped (the idempotency key is the checkpoint's)."""
    from engine.store.tables import outbox as O

    keys = {r: f"checkpoint:{seq}:{r}" for r in dict.fromkeys(recipients)}
    have = {k for (k,) in conn.execute(sa.select(O.c.idempotency_key).where(O.c.idempotency_key.in_(keys.values())))}
    fresh = [(r, k) for r, k in keys.items() if k not in have]
    if fresh:
        conn.execute(sa.insert(O), [{"instance_id": 0, "seq": seq, "recipient": r, "channel": "email", "message": message,
                                     "idempotency_key": k, "created_at": at, "next_attempt_at": at} for r, k in fresh])
    return [r for r, _ in fresh]
