"""The ``instances`` table: loading an instance (for a command, locked on PostgreSQL), its
children and external key, new ids, and the lists the runtime asks for (queues, versions).

Everything here runs through SQLAlchemy Core (the general backend, and the reads where speed
does not matter). The driver backends (engine/store/backends/) write the hot statements
themselves and share with this module what must not differ: the row a new instance is
inserted with (:func:`new_row`) and how a stored row decodes (:func:`decode_instance`).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from engine.codec import clocks_from_json
from engine.core.model import GENESIS_HASH, Instance
from engine.errors import InstanceNotFound, StoredDataCorrupt
from engine.store.tables import instances as I

_INSTANCE_COLS = [I.c.id, I.c.procedure, I.c.version, I.c.state, I.c.status, I.c.assignee, I.c.assignee_role,
                  I.c.data, I.c.clocks, I.c.watchers, I.c.branches, I.c.parent_id, I.c.revision, I.c.started_at,
                  I.c.last_occurred_at, I.c.last_hash]


INSTANCE_COLUMNS = tuple(c.key for c in _INSTANCE_COLS)
# Where the two times sit in a row of INSTANCE_COLUMNS (a driver backend reads them itself).
STARTED_AT, LAST_OCCURRED_AT = INSTANCE_COLUMNS.index("started_at"), INSTANCE_COLUMNS.index("last_occurred_at")

_LOAD = sa.select(*_INSTANCE_COLS).where(I.c.id == sa.bindparam("iid"))
_CHILDREN = sa.select(I.c.id).where(I.c.parent_id == sa.bindparam("pid")).order_by(I.c.id)
_CHILD_STATUS = sa.select(I.c.procedure, I.c.status).where(I.c.parent_id == sa.bindparam("pid")).order_by(I.c.id)
_BY_KEY = sa.select(I.c.id).where(I.c.external_key == sa.bindparam("key"))
_NEW_INSTANCE = sa.insert(I).returning(I.c.id)


def decode_instance(row: Any) -> Instance:
    """The instance of a row of INSTANCE_COLUMNS (by position), its times read already."""
    (iid, procedure, version, state, status, assignee, assignee_role, data, clocks, watchers, branches,
     parent_id, revision, started_at, last_occurred_at, last_hash) = row
    try:
        data, clocks = json.loads(data), clocks_from_json(clocks)
        watchers = tuple(json.loads(watchers or "[]"))
        branches = json.loads(branches or "{}")
    except ValueError as e:
        raise StoredDataCorrupt(f"instance {iid}", f"data, clocks, watchers or branches: {e}") from None
    return Instance(id=iid, procedure=procedure, version=version, state=state, status=status,
                    assignee=assignee, assignee_role=assignee_role, data=data, clocks=clocks,
                    watchers=watchers, branches=branches, parent_id=parent_id, revision=revision,
                    started_at=started_at, last_occurred_at=last_occurred_at, last_hash=last_hash)



# PostgreSQL write transactions lock the instance row as they read it: a writer that waits
# here then decides on the state committed before it, instead of failing on the events key
# at commit, and the sweep (which locks timer and instance rows together, skipping locked
# ones, see timers.lock_due) can never hold a row a writer needs while waiting for that
# writer. SQLite writers are serialised by BEGIN IMMEDIATE already.
_LOAD_LOCKED = _LOAD.with_for_update()


def locks_rows(conn: Connection) -> bool:
    """Whether loading for a write locks the row: PostgreSQL, outside read transactions."""
    return conn.dialect.name == "postgresql" and not conn.get_execution_options().get("sop_read_only")


def load_instance(conn: Connection, instance_id: int) -> Instance:
    """The stored instance (its row locked on PostgreSQL in a write transaction);
    InstanceNotFound if there is none."""
    row = conn.execute(_LOAD_LOCKED if locks_rows(conn) else _LOAD, {"iid": instance_id}).first()
    if row is None:
        raise InstanceNotFound(instance_id)
    return decode_instance(row)



def children_of(conn: Connection, instance_id: int) -> list[int]:
    return [r[0] for r in conn.execute(_CHILDREN, {"pid": instance_id})]


def procedure_of(conn: Connection, instance_id: int) -> Optional[str]:
    """The procedure of an instance, or None when there is no such instance."""
    return conn.execute(sa.select(I.c.procedure).where(I.c.id == instance_id)).scalar_one_or_none()


def child_procedures(conn: Connection, instance_id: int) -> list[tuple[str, str]]:
    """(procedure, status) of each instance this one started, oldest first."""
    return [(r[0], r[1]) for r in conn.execute(_CHILD_STATUS, {"pid": instance_id})]



def find_by_key(conn: Connection, key: str) -> Optional[int]:
    row = conn.execute(_BY_KEY, {"key": key}).first()
    return None if row is None else row[0]


def new_row(procedure: str, version: str, state: str, at: datetime, parent_id: Optional[int],
            external_key: Optional[str]) -> dict[str, Any]:
    """Every column but ``id`` of a new instance's placeholder row (status "starting"), by
    name in table order: what every backend inserts, so none leaves a column to a default."""
    return {"procedure": procedure, "version": version, "state": state, "status": "starting", "assignee": None,
            "assignee_role": None, "building": None, "data": "{}", "clocks": "{}", "watchers": "[]",
            "branches": "{}", "parent_id": parent_id, "revision": 0, "started_at": at, "last_occurred_at": at,
            "last_hash": GENESIS_HASH, "external_key": external_key}


def new_instance_id(conn: Connection, row: dict[str, Any]) -> Optional[int]:
    """Insert a :func:`new_row` first so the id is known to the decision (it may appear in
    messages).

    With an ``external_key`` (an imported call record, a payment) a concurrent importer may
    have inserted the same key: then nothing is inserted and None comes back, so the caller
    returns the existing instance instead of failing on the unique key.
    """
    if row["external_key"] is None:
        return int(conn.execute(_NEW_INSTANCE, row).scalar_one())
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(I).values(**row).on_conflict_do_nothing(index_elements=[I.c.external_key])
    got = conn.execute(stmt.returning(I.c.id)).first()
    return int(got[0]) if got else None



def active_on_version(conn: Connection, procedure: str, version: str, other: bool = False) -> list[tuple[int, str]]:
    """(id, version) of the active instances of ``procedure`` pinned to ``version`` (with
    ``other``: to any version but it), oldest first."""
    on = I.c.version != version if other else I.c.version == version
    return [(int(r[0]), str(r[1])) for r in conn.execute(
        sa.select(I.c.id, I.c.version).where(I.c.procedure == procedure, on, I.c.status == "active")
        .order_by(I.c.id))]


def instances_started_since(conn: Connection, procedure: str, since: Optional[datetime]) -> list[int]:
    """Ids of the instances of ``procedure`` started at or after ``since`` (all when None), oldest first."""
    q = sa.select(I.c.id).where(I.c.procedure == procedure, I.c.status != "starting")
    if since is not None:
        q = q.where(I.c.started_at >= since)
    return [int(r[0]) for r in conn.execute(q.order_by(I.c.id))]



def in_buildings(buildings: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """An instance of one of ``buildings``, or of no building (an anonymous complaint): what
    a building-scoped person's queues hold (OrgSpec.building_scope)."""
    return sa.or_(I.c.building.is_(None), I.c.building.in_(buildings))


def task_rows(conn: Connection, assignee: Optional[str], roles: list[str], limit: int = 500,
              buildings: Optional[tuple[str, ...]] = None) -> list[Instance]:
    """Active instances assigned to ``assignee`` or waiting unassigned in a queue of
    ``roles``; with ``buildings`` (a steward's scope), only the queues' instances of those
    buildings or of none."""
    cond = []
    if assignee:
        cond.append(I.c.assignee == assignee)
    if roles:
        queue: list[sa.ColumnElement[bool]] = [I.c.assignee.is_(None), I.c.assignee_role.in_(roles)]
        if buildings is not None:
            queue.append(in_buildings(buildings))
        cond.append(sa.and_(*queue))
    if not cond:
        return []
    rows = conn.execute(sa.select(*_INSTANCE_COLS).where(I.c.status == "active", sa.or_(*cond))
                        .order_by(I.c.last_occurred_at, I.c.id).limit(limit))
    return [decode_instance(r) for r in rows]


def count_instances(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(I)).scalar_one())


# Loading many instances for one write transaction (the batch paths, engine/runtime/batch.py):
# one statement per chunk of ids, in id order (on PostgreSQL locked in that order, so two
# batches naming the same instances queue instead of deadlocking). A driver backend runs
# the same with its own IN list of MANY_CHUNK-padded parameters (``padded``).
MANY_CHUNK = 512


def padded(ids: list[int]) -> Iterator[list[int]]:
    """``ids`` in chunks of at most MANY_CHUNK, each padded to the next power of two by
    repeating its last id: a few statement texts (and server-side plans) serve every size."""
    for first in range(0, len(ids), MANY_CHUNK):
        chunk = ids[first:first + MANY_CHUNK]
        n = 1 << (len(chunk) - 1).bit_length()
        yield chunk + [chunk[-1]] * (n - len(chunk))


def load_many(conn: Connection, instance_ids: list[int]) -> dict[int, Instance]:
    """The instances a batch will change, by id (ids with no instance are absent), through
    Core: read in id order, row-locked on PostgreSQL in a write transaction."""
    ids = sorted(set(instance_ids))
    out: dict[int, Instance] = {}
    for first in range(0, len(ids), MANY_CHUNK):
        q = sa.select(*_INSTANCE_COLS).where(I.c.id.in_(ids[first:first + MANY_CHUNK])).order_by(I.c.id)
        for row in conn.execute(q.with_for_update() if locks_rows(conn) else q):
            out[row[0]] = decode_instance(row)
    return out


def children_of_many(conn: Connection, parent_ids: list[int]) -> dict[int, list[tuple[int, str, str]]]:
    """(id, procedure, status) of the instances each of ``parent_ids`` started, oldest
    first, one statement per MANY_CHUNK parents (what a batch's guards read of linked instances)."""
    out: dict[int, list[tuple[int, str, str]]] = {p: [] for p in parent_ids}
    for first in range(0, len(parent_ids), MANY_CHUNK):
        q = sa.select(I.c.parent_id, I.c.id, I.c.procedure, I.c.status) \
            .where(I.c.parent_id.in_(parent_ids[first:first + MANY_CHUNK])).order_by(I.c.id)
        for parent, iid, procedure, status in conn.execute(q):
            out[parent].append((iid, procedure, status))
    return out
