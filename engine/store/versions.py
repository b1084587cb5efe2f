"""The ``procedure_versions`` table: each procedure version an instance was started or
migrated on, its snapshot kept so the instance can be decided and replayed on it later."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from engine.store.tables import procedure_versions as V


def ensure_version(conn: Connection, procedure: str, version: str, snapshot_json: str, at: datetime) -> None:
    exists = conn.execute(sa.select(V.c.version).where(V.c.procedure == procedure, V.c.version == version)).first()
    if exists is None:
        insert = sa.insert(V)
        if conn.dialect.name == "postgresql":  # another process may be saving the same version right now
            insert = postgresql.insert(V).on_conflict_do_nothing()
        conn.execute(insert.values(procedure=procedure, version=version, snapshot=snapshot_json,
                                   first_used_at=at))



def load_snapshot(conn: Connection, procedure: str, version: str) -> Optional[str]:
    return conn.execute(sa.select(V.c.snapshot).where(V.c.procedure == procedure, V.c.version == version)).scalar()


def list_versions(conn: Connection) -> list[Any]:
    return list(conn.execute(sa.select(V.c.procedure, V.c.version, V.c.first_used_at)
                             .order_by(V.c.procedure, V.c.first_used_at)))
