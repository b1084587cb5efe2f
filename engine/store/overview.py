"""Store-wide facts about one database, for whoever reports on it as a whole (``sop demo``).

Which command made the database (``sop_meta.created_by``) and how its instances stand:
counts by procedure, state and status, every id, how many automatic actions were refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.tables import events, instances, sop_meta


@dataclass(frozen=True)
class Census:
    """How the instances of a database stand: ``states`` as (procedure, state, status, count)."""

    states: list[tuple[str, str, str, int]]
    instance_ids: list[int]
    refused_automatic_actions: int


def census(conn: Connection) -> Census:
    """Instances by procedure, status and state (in that order), every id, refused automatic actions."""
    inst, ev = instances, events
    rows = conn.execute(sa.select(inst.c.procedure, inst.c.state, inst.c.status, sa.func.count())
                        .group_by(inst.c.procedure, inst.c.state, inst.c.status)
                        .order_by(inst.c.procedure, inst.c.status, inst.c.state)).all()
    ids = [r[0] for r in conn.execute(sa.select(inst.c.id).order_by(inst.c.id))]
    refused = conn.execute(sa.select(sa.func.count()).select_from(ev)
                           .where(ev.c.type == "AutomaticActionRefused")).scalar_one()
    return Census([(p, s, st, n) for p, s, st, n in rows], ids, refused)


def mark_created_by(conn: Connection, mark: str) -> None:
    """Record which command made this database, unless something already said so."""
    if conn.execute(sa.select(sop_meta.c.value).where(sop_meta.c.key == "created_by")).first() is None:
        conn.execute(sa.insert(sop_meta).values(key="created_by", value=mark))


def created_by_of_file(path: Path) -> Optional[str]:
    """Which command made the SQLite file at ``path`` (None: not one that says so), read
    without writing anything: opened read-only, no journal recovery by this check."""
    import sqlite3

    from engine.store.migrate import NotSQLite, read_sqlite

    try:
        rows = read_sqlite(path, "SELECT value FROM sop_meta WHERE key = 'created_by'")
    except (OSError, NotSQLite, sqlite3.Error):
        return None
    return rows[0][0] if rows else None
