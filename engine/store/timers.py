"""The timers table: the durable, indexed projection of every instance's clocks.

It is written in the same transaction as the events that change a clock, so it can
never disagree with the log. The sweep asks it only for rows whose ``next_fire_at`` has
come, and claims a row by clearing that column with a compare-and-set; the claim and the
firing commit together, so a crash in between leaves the row due and it fires once, later.

On PostgreSQL, where several workers sweep at once, :func:`lock_due` selects a batch
``FOR UPDATE SKIP LOCKED`` inside the transaction that fires it, locking each due row
together with its instance row: concurrent sweepers take disjoint batches without waiting
for each other, and a writer changing an instance waits for the batch that holds it
(writers lock the instance row first, see ``instances.load_instance``), so no lock cycle
can form. SQLite has one writer at a time (``BEGIN IMMEDIATE``) and needs none of this.

The statements here are the general backend's (SQLAlchemy Core); every backend computes
what to write with :func:`changes`, and the driver backends (engine/store/backends/) run
their own SQL for the sweep's hot statements.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.codec import Clock, timer_row_changes, timer_row_values
from engine.store.tables import instances as I
from engine.store.tables import timers as T


COLUMNS = tuple(c.key for c in T.columns)  # a full row's, in table order
_INSERT = sa.insert(T)
_UPDATES: dict[tuple[str, ...], Any] = {}  # the UPDATE per set of changed columns
_CLAIM = sa.update(T).where(T.c.instance_id == sa.bindparam("b_instance_id"), T.c.name == sa.bindparam("b_name"),
                            T.c.next_fire_at == sa.bindparam("b_next_fire_at")).values(next_fire_at=None)


Changes = tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]


def changes(instance_id: int, procedure: str, before: Mapping[str, Clock], after: Mapping[str, Clock]) -> Changes:
    """What moves the timers rows from clocks ``before`` to clocks ``after`` of one instance:
    the full rows to insert (in table column order), and per clock that changed its name
    with only the columns whose value changed (SQLite rewrites the index entries of every
    column in the SET clause, changed or not: a page each, in every commit)."""
    inserts: list[dict[str, Any]] = []
    updates: list[tuple[str, dict[str, Any]]] = []
    for name, c in after.items():
        old = before.get(name)
        if old is c or old == c:  # most clocks are carried over as they were
            continue
        if old is None:
            inserts.append({"instance_id": instance_id, "name": name, **timer_row_values(procedure, c)})
            continue
        changed = timer_row_changes(procedure, old, c)
        if changed:
            updates.append((name, changed))
    return inserts, updates


Many = list[tuple[int, str, Mapping[str, Clock], Mapping[str, Clock]]]


def changes_many(many: Many) -> tuple[list[dict[str, Any]], list[tuple[int, str, dict[str, Any]]]]:
    """:func:`changes` for many instances at once, ``(instance_id, procedure, clocks before,
    clocks after)`` each (a batch's): every row to insert, and every update with its key."""
    inserts: list[dict[str, Any]] = []
    updates: list[tuple[int, str, dict[str, Any]]] = []
    for instance_id, procedure, before, after in many:
        new, changed = changes(instance_id, procedure, before, after)
        inserts += new
        updates += [(instance_id, name, values) for name, values in changed]
    return inserts, updates


def sync(conn: Connection, instance_id: int, procedure: str, before: Mapping[str, Clock],
         after: Mapping[str, Clock]) -> None:
    """Upsert the rows of clocks that changed between two projections of one instance (Core)."""
    inserts, updates = changes(instance_id, procedure, before, after)
    for name, changed in updates:
        conn.execute(_update(tuple(changed)), {"b_instance_id": instance_id, "b_name": name, **changed})
    if inserts:
        conn.execute(_INSERT, inserts)


def sync_many(conn: Connection, many: Many) -> None:
    """:func:`sync` for a batch's instances (Core): rows end as one ``sync`` each leaves them."""
    inserts, updates = changes_many(many)
    for instance_id, name, changed in updates:
        conn.execute(_update(tuple(changed)), {"b_instance_id": instance_id, "b_name": name, **changed})
    if inserts:
        conn.execute(_INSERT, inserts)


def _update(columns: tuple[str, ...]) -> Any:
    stmt = _UPDATES.get(columns)
    if stmt is None:
        stmt = _UPDATES[columns] = sa.update(T).where(
            T.c.instance_id == sa.bindparam("b_instance_id"), T.c.name == sa.bindparam("b_name")) \
            .values({c: sa.bindparam(c, type_=T.c[c].type) for c in columns})
    return stmt


_DUE = sa.select(T.c.instance_id, T.c.name, T.c.next_fire_at) \
    .where(T.c.next_fire_at.is_not(None), T.c.next_fire_at <= sa.bindparam("until", type_=T.c.next_fire_at.type)) \
    .order_by(T.c.next_fire_at).limit(sa.bindparam("n"))


def due(conn: Connection, until: datetime, limit: int) -> list[Any]:
    """The earliest due rows (instance_id, name, next_fire_at), via the partial index."""
    return list(conn.execute(_DUE, {"until": until, "n": limit}))


def next_due(conn: Connection) -> Optional[datetime]:
    """When the earliest pending step comes due (the first entry of the partial index)."""
    return conn.execute(sa.select(sa.func.min(T.c.next_fire_at)).where(T.c.next_fire_at.is_not(None))).scalar()


def locks_rows(conn_or_engine: Any) -> bool:
    """Whether due rows are chosen with :func:`lock_due` (PostgreSQL: row locks, SKIP LOCKED)
    rather than read under the write lock a write transaction holds (SQLite); see port.due_steps."""
    return conn_or_engine.dialect.name == "postgresql"


def lock_due(conn: Connection, until: datetime, limit: int, skip: Any = ()) -> list[Any]:
    """PostgreSQL: the earliest due rows not held by another transaction, locked (with their
    instance rows, instance first) until this transaction ends; ``skip`` lists (instance_id,
    name) pairs to leave alone (those that failed in this pass)."""
    q = (sa.select(T.c.instance_id, T.c.name, T.c.next_fire_at)
         .select_from(I).join(T, T.c.instance_id == I.c.id)
         .where(T.c.next_fire_at.is_not(None), T.c.next_fire_at <= until)
         .order_by(T.c.next_fire_at).limit(limit)
         .with_for_update(of=[I, T], skip_locked=True))
    if skip:
        q = q.where(sa.tuple_(T.c.instance_id, T.c.name).not_in([tuple(k) for k in skip]))
    return list(conn.execute(q))


def claim(conn: Connection, instance_id: int, name: str, next_fire_at: datetime) -> bool:
    """Compare-and-set: True for exactly one claimant of this due step."""
    params = {"b_instance_id": instance_id, "b_name": name, "b_next_fire_at": next_fire_at}
    return conn.execute(_CLAIM, params).rowcount == 1


def report_rows(conn: Connection, start: Optional[datetime], end: Optional[datetime],
                procedure: Optional[str]) -> list[Any]:
    q = (sa.select(T.c.procedure, T.c.name, T.c.status, T.c.assignee, T.c.breached_at, T.c.provisional)
         .where(T.c.kind == "sla"))
    return list(conn.execute(_started_within(q, start, end, procedure)))


def _started_within(q: Any, start: Optional[datetime], end: Optional[datetime], procedure: Optional[str]) -> Any:
    """The report's filter: clocks started in [start, end), of one procedure if given."""
    if start is not None:
        q = q.where(T.c.started_at >= start)
    if end is not None:
        q = q.where(T.c.started_at < end)
    if procedure is not None:
        q = q.where(T.c.procedure == procedure)
    return q


def instances_with_open_steps(conn: Connection) -> list[int]:
    """Instances that have a clock step still to fire (the ones a calendar change can move)."""
    q = sa.select(T.c.instance_id).where(T.c.next_fire_at.is_not(None)).distinct().order_by(T.c.instance_id)
    return [r[0] for r in conn.execute(q)]


def provisional_open_count(conn: Connection) -> int:
    """Clock steps still to fire whose due time was computed on a provisional calendar year."""
    q = sa.select(sa.func.count()).select_from(T).where(T.c.next_fire_at.is_not(None), T.c.provisional)
    return int(conn.execute(q).scalar_one())


def pending_count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(T).where(T.c.next_fire_at.is_not(None)))
               .scalar_one())


def report_detail_rows(conn: Connection, start: Optional[datetime], end: Optional[datetime],
                       procedure: Optional[str]) -> list[Any]:
    """The SLA clocks of :func:`report_rows` with when they started and the instance's building
    (for the dashboard's months and buildings)."""
    q = (sa.select(T.c.procedure, T.c.name, T.c.status, T.c.assignee, T.c.breached_at, T.c.started_at,
                   T.c.instance_id, I.c.building)
         .select_from(T.join(I, I.c.id == T.c.instance_id)).where(T.c.kind == "sla"))
    return list(conn.execute(_started_within(q, start, end, procedure)))
