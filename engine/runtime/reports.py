"""Scheduled reports: one message over all running instances of a procedure (DUN-6).

Why: a supervisor who reviews every steward's dunning calls each workday (催费日报表) needs
one report listing the open cases, not one notification per case; with a few hundred
units in arrears the per-case timer sent hundreds of messages a day. A report is declared
in the procedure (``reports:``) and sent by the timer sweep (``Engine.tick``): at each
occurrence of its schedule, one outbox row per recipient with a heading and a line per
listed instance, rendered like any notification.

Exactly once: the outbox row's idempotency key names the report and the occurrence, so two
workers, or a worker after a restart, never send the same occurrence twice. A report is a
snapshot of the moment it is made, so after downtime only the latest missed occurrence is
sent: the state of last Tuesday's cases cannot be made any more.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

import sqlalchemy as sa

from engine.core.decide import expression_context, render
from engine.schedules import parse_schedule
from engine.spec.library import CompiledProcedure
from engine.spec.models import ReportSpec
from engine.store import instances as instance_store
from engine.store.tables import instances as I
from engine.store.queue import queue_once
from engine.store.tables import outbox as O

log = logging.getLogger("sop.reports")

LOOKBACK = timedelta(days=40)  # the longest period a schedule can have (monthly), and some


@dataclass(frozen=True)
class Sent:
    procedure: str
    report: str
    occurrence: datetime
    listed: int
    recipients: tuple[str, ...]


def send_due(engine: Any, now: datetime) -> list[Sent]:
    """Send every report whose latest occurrence at or before ``now`` has not been sent."""
    sent: list[Sent] = []
    handled: dict[tuple[str, str], datetime] = engine.__dict__.setdefault("_reports_handled", {})
    for proc in engine.library.procedures.values():
        for spec in proc.spec.reports:
            occurrence = latest_occurrence(engine, proc, spec, now)
            if occurrence is None or handled.get((proc.id, spec.name)) == occurrence:
                continue
            done = _send(engine, proc, spec, occurrence)
            # Made (or found empty) once per occurrence in this process: an empty report
            # must not be made later from what changed after its time.
            handled[(proc.id, spec.name)] = occurrence
            if done is not None:
                sent.append(done)
    return sent


def latest_occurrence(engine: Any, proc: CompiledProcedure, spec: ReportSpec, now: datetime) -> Optional[datetime]:
    """The last occurrence at or before ``now``, remembered until the next one is due (the
    sweep asks every second; the calendar is walked once per occurrence)."""
    memo: dict[tuple[str, str], tuple[Optional[datetime], datetime]] = engine.__dict__.setdefault("_report_next", {})
    key = (proc.id, spec.name)
    known = memo.get(key)
    if known is not None and known[0] is not None and known[0] <= now < known[1]:
        return known[0]
    schedule = parse_schedule(spec.schedule, proc.spec.units)
    last, t = None, now - LOOKBACK
    while (following := schedule.next_after(t, engine.calendar)) <= now:
        last, t = following, following
    memo[key] = (last, following)
    return last


def _send(engine: Any, proc: CompiledProcedure, spec: ReportSpec, occurrence: datetime) -> Optional[Sent]:
    recipients = tuple(p.id for p in engine.org.holders(spec.role))
    keys = {r: f"report:{proc.id}:{spec.name}:{occurrence.isoformat()}:{r}" for r in recipients}
    with engine.read() as conn:  # sent already, or nothing to say: no write transaction
        if not _unsent(conn, keys):
            return None
        lines = _lines(engine, conn, proc, spec, occurrence)
    if not lines and spec.empty is None:
        return None
    with engine.transaction() as conn:
        local = occurrence.astimezone(engine.calendar.zone)
        heading = render(spec.heading if lines else spec.empty or "", {"date": local.date().isoformat(),
                                                                       "count": len(lines)})
        message = "\n".join([heading, *lines])
        # Keyed inserts, not a second look: another worker may have sent it meanwhile.
        todo = queue_once(conn, [{"instance_id": 0, "seq": 0, "recipient": r, "channel": spec.channel,
                                  "message": message, "idempotency_key": key, "status": "pending",
                                  "attempts": 0, "created_at": occurrence, "next_attempt_at": occurrence}
                                 for r, key in keys.items()])
        if not todo:
            return None
    log.info("report %s/%s of %s: %d lines to %s", proc.id, spec.name, occurrence, len(lines), ", ".join(todo))
    return Sent(proc.id, spec.name, occurrence, len(lines), tuple(todo))


def _unsent(conn: Any, keys: dict[str, str]) -> list[str]:
    """The recipients whose copy of this occurrence is not in the outbox yet."""
    taken = set(conn.execute(sa.select(O.c.idempotency_key).where(O.c.idempotency_key.in_(list(keys.values()))))
                .scalars())
    return [r for r, key in keys.items() if key not in taken]


def _lines(engine: Any, conn: Any, proc: CompiledProcedure, spec: ReportSpec, at: datetime) -> list[str]:
    """A line per running instance of the procedure (any version) that the report's ``when`` lists."""
    ids = conn.execute(sa.select(I.c.id).where(I.c.procedure == proc.id, I.c.status == "active")
                       .order_by(I.c.id)).scalars().all()
    lines = []
    for iid in ids:
        inst = instance_store.load_instance(conn, iid)
        pinned = engine.procedure_for(conn, inst.procedure, inst.version)
        if spec.when is not None:
            ctx = expression_context(pinned, inst, at, "system", org=engine.org)
            if not proc.expr(spec.when).evaluate(ctx):
                continue
        lines.append(render(spec.line, {**inst.data, "id": inst.id, "state": inst.state}))
    return lines
