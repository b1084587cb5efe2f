"""Listing instances for the API: filters, a stable order and pages, in one indexed query.

``instances.task_rows`` answers "what is waiting on me" for the CLI; this module
answers the same question and the wider "which instances" one with the filters a client
needs (procedure, state, status, assignee, role queue, building, overdue) and a page
(``limit``/``offset``) plus the total, so a phone can page through a long inbox.

"Overdue" means an SLA clock of the instance that still runs and is past its due time
(or already breached); it reads the ``timers`` projection, so it costs one indexed
``EXISTS`` per candidate row, never a fold of the log.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.core.model import Instance
from engine.store.instances import _INSTANCE_COLS, decode_instance  # the one row -> Instance mapping
from engine.store.instances import in_buildings
from engine.store.tables import instances as I

# Only the columns read here, so this module does not depend on the timers module's internals.
_TIMERS = sa.table("timers", sa.column("instance_id"), sa.column("kind"), sa.column("status"),
                   sa.column("due_at"), sa.column("next_fire_at"), sa.column("ended_at"))


@dataclass(frozen=True)
class InstanceFilter:
    procedure: Optional[str] = None
    state: Optional[str] = None
    status: Optional[str] = None
    assignee: Optional[str] = None
    role: Optional[str] = None          # the role queue (``assignee_role``)
    unassigned: bool = False            # only those nobody has taken yet
    building: Optional[str] = None
    overdue: Optional[bool] = None
    work_of: Optional[tuple[str, tuple[str, ...]]] = None  # (staff, roles): assigned to them, or in a queue of theirs
    roles: Optional[tuple[str, ...]] = None  # in the queue of any of these roles (``assignee_role``)
    # A building-scoped person's queues (OrgSpec.building_scope): unassigned instances only
    # of these buildings or of none; what is assigned to them shows wherever it is.
    queue_buildings: Optional[tuple[str, ...]] = None
    watcher: Optional[str] = None       # only the instances this person watches


@dataclass(frozen=True)
class Page:
    items: list[Instance]
    total: int


def _overdue(now: datetime) -> sa.ColumnElement[bool]:
    from engine.store.tables import UTCDateTime

    t = _TIMERS
    past_due = sa.and_(t.c.next_fire_at.is_not(None), t.c.due_at <= sa.literal(now, UTCDateTime()))
    return sa.exists().where(t.c.instance_id == I.c.id, t.c.kind == "sla", t.c.ended_at.is_(None),
                             sa.or_(t.c.status == "breached", past_due))


def _conditions(f: InstanceFilter, now: datetime) -> list[sa.ColumnElement[bool]]:
    cond: list[sa.ColumnElement[bool]] = [I.c.status != "starting"]
    for column, value in ((I.c.procedure, f.procedure), (I.c.state, f.state), (I.c.status, f.status),
                          (I.c.assignee, f.assignee), (I.c.assignee_role, f.role), (I.c.building, f.building)):
        if value is not None:
            cond.append(column == value)
    if f.unassigned:
        cond.append(I.c.assignee.is_(None))
    if f.roles is not None:
        cond.append(I.c.assignee_role.in_(f.roles))
    if f.queue_buildings is not None and f.work_of is None:
        cond.append(sa.or_(I.c.assignee.is_not(None), in_buildings(f.queue_buildings)))
    if f.watcher is not None:
        cond.append(watched_by(f.watcher))
    if f.overdue is not None:
        cond.append(_overdue(now) if f.overdue else sa.not_(_overdue(now)))
    if f.work_of is not None:
        staff, roles = f.work_of
        mine = [I.c.assignee == staff]
        if roles:
            queue: list[sa.ColumnElement[bool]] = [I.c.assignee.is_(None), I.c.assignee_role.in_(roles)]
            if f.queue_buildings is not None:
                queue.append(in_buildings(f.queue_buildings))
            mine.append(sa.and_(*queue))
        cond.append(sa.or_(*mine))
    return cond


def watched_by(staff: str) -> sa.ColumnElement[bool]:
    """The instances whose watchers (a JSON list of ids, canonical: ``["a","b"]``) name ``staff``."""
    quoted = json.dumps(staff, ensure_ascii=False).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.and_(I.c.watchers != sa.literal_column("'[]'"),  # literal: the partial index's term
                   I.c.watchers.like(f"%{quoted}%", escape="\\"))


def list_instances(conn: Connection, f: InstanceFilter, now: datetime, limit: int, offset: int,
                   oldest_first: bool = False) -> Page:
    """One page of matching instances and the number that match in all.

    Tasks (``work_of``) come oldest first, like an inbox; other lists newest first.
    """
    cond = _conditions(f, now)
    total = int(conn.execute(sa.select(sa.func.count()).select_from(I).where(*cond)).scalar_one())
    order = (I.c.last_occurred_at, I.c.id) if oldest_first else (I.c.id.desc(),)
    rows = conn.execute(sa.select(*_INSTANCE_COLS).where(*cond).order_by(*order).limit(limit).offset(offset))
    return Page([decode_instance(r) for r in rows], total)


def started_between(conn: Connection, procedures: tuple[str, ...], start: Optional[datetime],
                    end: Optional[datetime]) -> list[Instance]:
    """Instances of ``procedures`` started in [start, end), oldest first (the quality figures)."""
    from engine.store.tables import UTCDateTime

    cond = [I.c.status != "starting", I.c.procedure.in_(procedures)]
    if start is not None:
        cond.append(I.c.started_at >= sa.literal(start, UTCDateTime()))
    if end is not None:
        cond.append(I.c.started_at < sa.literal(end, UTCDateTime()))
    rows = conn.execute(sa.select(*_INSTANCE_COLS).where(*cond).order_by(I.c.started_at, I.c.id))
    return [decode_instance(r) for r in rows]


def branch_tasks(conn: Connection, staff: Optional[str], roles: tuple[str, ...] | list[str],
                 buildings: Optional[tuple[str, ...]] = None, limit: int = 500,
                 narrow: Optional[InstanceFilter] = None, now: Optional[datetime] = None) -> list[Instance]:
    """One task per open parallel branch (engine/core/parallel.py) waiting on ``staff`` or
    unassigned in a queue of ``roles`` (a building-scoped person's queues: their buildings'
    or none's), each as the instance seen from that branch: its state, assignee and role.

    ``narrow`` is the inbox's own filter, judged as it judges an instance-level task: the
    procedure, building and overdue clocks on the instance; the state and assignee on the
    branch, which is where the task stands (``overdue`` needs ``now``).

    The instance rows themselves are assigned to nobody while they are in branches, so
    these never duplicate the instance-level tasks. The LIKE narrows the rows to those whose
    branches JSON names the person or a role; the match itself is exact, here."""
    names = [f'%"assignee":{json.dumps(staff)}%'] if staff else []
    names += [f'%"role":{json.dumps(r)}%' for r in roles]
    f = narrow or InstanceFilter()
    if not names or f.status not in (None, "active"):
        return []
    cond = [I.c.status == "active", I.c.branches != sa.literal_column("'{}'"),  # literal: the partial index's term
            sa.or_(*(I.c.branches.like(n) for n in names))]
    cond += [column == value for column, value in ((I.c.procedure, f.procedure), (I.c.building, f.building))
             if value is not None]
    if f.overdue is not None:
        if now is None:
            raise ValueError("an overdue filter needs the time it is judged at")
        cond.append(_overdue(now) if f.overdue else sa.not_(_overdue(now)))
    rows = conn.execute(sa.select(*_INSTANCE_COLS, I.c.building).where(*cond)
                        .order_by(I.c.last_occurred_at, I.c.id).limit(limit))
    out = []
    for row in rows:
        inst, building = decode_instance(row[:-1]), row.building  # the stored column: the runtime's rule, kept on write
        for br in inst.branches.values():
            if br["status"] != "open" or f.state not in (None, br["state"]) \
                    or f.assignee not in (None, br["assignee"]):
                continue
            mine = staff is not None and br["assignee"] == staff
            queued = (br["assignee"] is None and br["role"] in roles
                      and (buildings is None or building is None or building in buildings))
            if mine or queued:
                out.append(inst.with_(state=br["state"], assignee=br["assignee"], assignee_role=br["role"]))
    return out


def merged(tasks: list[Instance], more: list[Instance]) -> list[Instance]:
    """Two inbox lists in one, oldest activity first (as ``list_instances`` orders an inbox)."""
    return sorted(tasks + more, key=lambda i: (i.last_occurred_at, i.id, i.state))
