"""The ``instances`` table: loading an instance (for a command, locked on PostgreSQL), its
children and external key, new ids, and the lists the runtime asks for (queues, versions).

Hot-path statements are built once, at import, with named bind parameters and run through
``prepared.Prepared``: building a statement per call (and hashing it for SQLAlchemy's
compiled cache) cost more CPU than SQLite's commit itself (see BENCHMARKS.md).
"""
from __future__ import annotations

import json
from collections import namedtuple
from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from engine.codec import clocks_from_json
from engine.core.model import GENESIS_HASH, Instance
from engine.errors import InstanceNotFound, StoredDataCorrupt
from engine.store.instance_cache import InstanceCache, check_entry
from engine.store.prepared import Prepared
from engine.store.tables import instances as I

_INSTANCE_COLS = [I.c.id, I.c.procedure, I.c.version, I.c.state, I.c.status, I.c.assignee, I.c.assignee_role,
                  I.c.data, I.c.clocks, I.c.watchers, I.c.branches, I.c.parent_id, I.c.revision, I.c.started_at,
                  I.c.last_occurred_at, I.c.last_hash]


_LOAD = Prepared(sa.select(*_INSTANCE_COLS).where(I.c.id == sa.bindparam("iid")))
_CHILDREN = Prepared(sa.select(I.c.id).where(I.c.parent_id == sa.bindparam("pid")).order_by(I.c.id))
_CHILD_STATUS = Prepared(sa.select(I.c.procedure, I.c.status).where(I.c.parent_id == sa.bindparam("pid"))
                         .order_by(I.c.id))
_BY_KEY = Prepared(sa.select(I.c.id).where(I.c.external_key == sa.bindparam("key")))
_NEW_INSTANCE = Prepared(sa.insert(I).returning(I.c.id))


def _instance(row: Any) -> Instance:
    try:
        data, clocks = json.loads(row.data), clocks_from_json(row.clocks)
        watchers = tuple(json.loads(row.watchers or "[]"))
        branches = json.loads(row.branches or "{}")
    except ValueError as e:
        raise StoredDataCorrupt(f"instance {row.id}", f"data, clocks, watchers or branches: {e}") from None
    return Instance(id=row.id, procedure=row.procedure, version=row.version, state=row.state, status=row.status,
                    assignee=row.assignee, assignee_role=row.assignee_role, data=data, clocks=clocks,
                    watchers=watchers, branches=branches, parent_id=row.parent_id, revision=row.revision,
                    started_at=row.started_at, last_occurred_at=row.last_occurred_at, last_hash=row.last_hash)


# PostgreSQL write transactions lock the instance row as they read it: a writer that waits
# here then decides on the state committed before it, instead of failing on the events key
# at commit, and the sweep (which locks timer and instance rows together, skipping locked
# ones, see timers.lock_due) can never hold a row a writer needs while waiting for that
# writer. SQLite writers are serialised by BEGIN IMMEDIATE already.
_LOAD_LOCKED = Prepared(sa.select(*_INSTANCE_COLS).where(I.c.id == sa.bindparam("iid")).with_for_update())


def _locks_rows(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and not conn.get_execution_options().get("sop_read_only")


def _load_locked(conn: Connection, instance_id: int) -> Instance:
    row = _LOAD_LOCKED.first(conn, {"iid": instance_id})
    if row is None:
        raise InstanceNotFound(instance_id)
    return _instance(row)


def load_instance(conn: Connection, instance_id: int) -> Instance:
    if _locks_rows(conn):
        return _load_locked(conn, instance_id)
    row = _LOAD.first(conn, {"iid": instance_id})
    if row is None:
        raise InstanceNotFound(instance_id)
    return _instance(row)


INSTANCE_COLUMNS = tuple(c.key for c in _INSTANCE_COLS)


def load_for_write(conn: Connection, instance_id: int, cache: InstanceCache) -> Instance:
    """The instance a command will change: read its row (locked on PostgreSQL, see
    ``load_instance``) and decode it, unless it is a row the cache knows
    (engine.store.instance_cache: on the driver fast path only, where rows are the driver's)."""
    load = _LOAD_LOCKED if _locks_rows(conn) else _LOAD
    row, process = load.first_unprocessed(conn, {"iid": instance_id})
    if row is None:
        raise InstanceNotFound(instance_id)
    if process is None:
        return _instance(row)
    cached = cache.get(instance_id, row)
    if cached is not None:
        if cache.check:
            check_entry(cached, _instance(process(row)))
        return cached
    inst = _instance(process(row))
    cache.remember(row, inst)
    return inst


def children_of(conn: Connection, instance_id: int) -> list[int]:
    return [r[0] for r in _CHILDREN.all(conn, {"pid": instance_id})]


def procedure_of(conn: Connection, instance_id: int) -> Optional[str]:
    """The procedure of an instance, or None when there is no such instance."""
    return conn.execute(sa.select(I.c.procedure).where(I.c.id == instance_id)).scalar_one_or_none()


def child_procedures(conn: Connection, instance_id: int) -> list[tuple[str, str]]:
    """(procedure, status) of each instance this one started, oldest first."""
    return [(r[0], r[1]) for r in _CHILD_STATUS.all(conn, {"pid": instance_id})]



def find_by_key(conn: Connection, key: str) -> Optional[int]:
    row = _BY_KEY.first(conn, {"key": key})
    return None if row is None else row[0]


def new_instance_id(conn: Connection, procedure: str, version: str, state: str, at: datetime,
                    parent_id: Optional[int], external_key: Optional[str] = None,
                    sent: Optional[dict[str, Any]] = None) -> Optional[int]:
    """Insert the row first so the id is known to the decision (it may appear in messages).

    With an ``external_key`` (an imported call record, a payment) a concurrent importer may
    have inserted the same key: then nothing is inserted and None comes back, so the caller
    returns the existing instance instead of failing on the unique key. ``sent`` receives
    the values the row was inserted with (see Prepared.execute).
    """
    row = {"procedure": procedure, "version": version, "state": state, "status": "starting", "data": "{}",
           "watchers": "[]", "branches": "{}", "parent_id": parent_id, "revision": 0, "started_at": at,
           "last_occurred_at": at,
           "last_hash": GENESIS_HASH, "external_key": external_key}
    if external_key is None:
        return int(_NEW_INSTANCE.first(conn, row, sent)[0])  # type: ignore[index]  (RETURNING gives one row)
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
        queue = [I.c.assignee.is_(None), I.c.assignee_role.in_(roles)]
        if buildings is not None:
            queue.append(in_buildings(buildings))
        cond.append(sa.and_(*queue))
    if not cond:
        return []
    rows = conn.execute(sa.select(*_INSTANCE_COLS).where(I.c.status == "active", sa.or_(*cond))
                        .order_by(I.c.last_occurred_at, I.c.id).limit(limit))
    return [_instance(r) for r in rows]


def count_instances(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(I)).scalar_one())


# Loading many instances for one write transaction (the batch paths): one statement per
# chunk of ids, its IN list of plain named parameters (an expanding one would keep it off
# the driver fast path), padded to a power of two so a few compiled plans serve every size.
_MANY_CHUNK = 512
_LOAD_MANY: dict[tuple[int, bool], Prepared] = {}


def _load_many_stmt(n: int, locked: bool) -> Prepared:
    key = (n, locked)
    if key not in _LOAD_MANY:
        q = sa.select(*_INSTANCE_COLS).where(I.c.id.in_([sa.bindparam(f"i{k}") for k in range(n)])).order_by(I.c.id)
        _LOAD_MANY[key] = Prepared(q.with_for_update() if locked else q)
    return _LOAD_MANY[key]


def load_many_for_write(conn: Connection, instance_ids: list[int], cache: InstanceCache) -> dict[int, Instance]:
    """The instances a batch will change, by id (ids with no instance are absent): read in
    id order (on PostgreSQL row-locked ``FOR UPDATE`` in that order, so two batches naming
    the same instances queue instead of deadlocking) and decoded unless the cache knows
    the row, as :func:`load_for_write` does for one."""
    ids = sorted(set(instance_ids))
    locked = _locks_rows(conn)
    out: dict[int, Instance] = {}
    for _, params in _padded(ids):
        rows, processors = _load_many_stmt(len(params), locked).all_unprocessed(conn, params)
        for row in rows:
            out[row[0]] = _decoded(row, processors, cache)
    return out


def children_of_many(conn: Connection, parent_ids: list[int]) -> dict[int, list[tuple[int, str, str]]]:
    """(id, procedure, status) of the instances each of ``parent_ids`` started, oldest
    first, in one statement per 512 parents (what a batch's guards read of linked instances)."""
    out: dict[int, list[tuple[int, str, str]]] = {p: [] for p in parent_ids}
    for chunk, params in _padded(parent_ids):
        for parent, iid, procedure, status in _children_many_stmt(len(params)).all(conn, params):
            out[parent].append((iid, procedure, status))
    return out


_CHILDREN_MANY: dict[int, Prepared] = {}


def _children_many_stmt(n: int) -> Prepared:
    if n not in _CHILDREN_MANY:
        _CHILDREN_MANY[n] = Prepared(sa.select(I.c.parent_id, I.c.id, I.c.procedure, I.c.status)
                                     .where(I.c.parent_id.in_([sa.bindparam(f"i{k}") for k in range(n)]))
                                     .order_by(I.c.id))
    return _CHILDREN_MANY[n]


def _padded(ids: list[int]) -> Any:
    """``(chunk, parameters)`` per ``_MANY_CHUNK`` ids: ``i0`` … ``i{n-1}``, n the next power
    of two (the last id repeated), so a few compiled plans serve every size."""
    for first in range(0, len(ids), _MANY_CHUNK):
        chunk = ids[first:first + _MANY_CHUNK]
        n = 1 << (len(chunk) - 1).bit_length()
        yield chunk, {f"i{k}": chunk[min(k, len(chunk) - 1)] for k in range(n)}


def _decoded(row: Any, processors: Any, cache: InstanceCache) -> Instance:
    """One loaded row as an instance: the cache's when it is the row remembered."""
    if processors is None:
        return _instance(row)
    cached = cache.get(row[0], row)
    if cached is not None:
        if cache.check:
            check_entry(cached, _instance(_processed(row, processors)))
        return cached
    inst = _instance(_processed(row, processors))
    cache.remember(row, inst)
    return inst


def _processed(row: Any, processors: Any) -> Any:
    values = [v if p is None else p(v) for p, v in zip(processors, row)]
    return _ROW._make(values)


_ROW = namedtuple("InstanceRow", INSTANCE_COLUMNS)  # type: ignore[misc]  (read by name, like Core rows)
