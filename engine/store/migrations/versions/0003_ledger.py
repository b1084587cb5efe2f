"""The store-wide ledger (one chained row per committed transaction that appended events),
its head row, and ``sop_meta`` (facts about the database itself, such as which command
created it).

Events stored before this revision are folded into the ledger here, one row per instance
in id order holding its events in seq order, chained exactly as ``engine/audit_ledger.py``
chains new rows (the hashing is repeated below so this file imports nothing of the
engine; ``tests/test_ledger.py`` checks that a backfilled ledger verifies). The backfill
vouches for the events as they are at the upgrade: the ledger proves nothing about what
happened to them before it (docs/audit.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
_PAGE = 500


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entries", sa.String(), nullable=False),
        sa.Column("leaf", sa.String(), nullable=False),
        sa.Column("prev", sa.String(), nullable=False),
        sa.Column("head", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "ledger_head",
        sa.Column("key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("prev", sa.String(), nullable=False),
        sa.Column("head", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "sop_meta",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    _backfill(op.get_bind())


def _backfill(conn: sa.engine.Connection) -> None:
    events = sa.table("events", sa.column("instance_id", sa.Integer()), sa.column("seq", sa.Integer()),
                      sa.column("hash", sa.String()))
    ledger = sa.table("ledger", sa.column("seq", sa.Integer()), sa.column("entries", sa.String()),
                      sa.column("leaf", sa.String()), sa.column("prev", sa.String()), sa.column("head", sa.String()),
                      sa.column("recorded_at", sa.DateTime(timezone=True)))
    now = datetime.now(timezone.utc)
    at = now.replace(tzinfo=None) if conn.dialect.name == "sqlite" else now
    seq, prev, after = 0, GENESIS, None
    before = GENESIS  # the head before the newest row
    while True:
        q = sa.select(events.c.instance_id).distinct().order_by(events.c.instance_id).limit(_PAGE)
        if after is not None:
            q = q.where(events.c.instance_id > after)
        ids = [r[0] for r in conn.execute(q)]
        if not ids:
            head_row = sa.table("ledger_head", sa.column("key", sa.Integer()), sa.column("seq", sa.Integer()),
                                sa.column("prev", sa.String()), sa.column("head", sa.String()))
            conn.execute(sa.insert(head_row).values(key=1, seq=seq, prev=before, head=prev))
            return
        by_id: dict[int, list[list[object]]] = {i: [] for i in ids}
        rows = conn.execute(sa.select(events.c.instance_id, events.c.seq, events.c.hash)
                            .where(events.c.instance_id.between(ids[0], ids[-1]))
                            .order_by(events.c.instance_id, events.c.seq))
        for iid, eseq, h in rows:
            if iid in by_id:
                by_id[iid].append([iid, eseq, h])
        out = []
        for iid in ids:
            seq += 1
            text = _canonical(by_id[iid])
            leaf = hashlib.sha256(text.encode("utf-8")).hexdigest()
            head = hashlib.sha256(_canonical([seq, prev, leaf]).encode("utf-8")).hexdigest()
            out.append({"seq": seq, "entries": text, "leaf": leaf, "prev": prev, "head": head, "recorded_at": at})
            before, prev = prev, head
        conn.execute(sa.insert(ledger), out)
        after = ids[-1]


def downgrade() -> None:
    op.drop_table("sop_meta")
    op.drop_table("ledger_head")
    op.drop_table("ledger")
