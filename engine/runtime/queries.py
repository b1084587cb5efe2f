"""The engine's reads: an instance, its actions and deadlines, inboxes, history, replay, verify.

``EngineQueries`` is a part of ``Engine`` (engine/runtime/service.py), which every caller
uses; reading never writes, and each read runs in one read transaction
(``self.connections.read()``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from engine import audit
from engine.calendar import WorkCalendar
from engine.codec import ClockKind
from engine.core.model import Event, Instance
from engine.errors import InputError, ReplayMismatch, StoredDataCorrupt
from engine.store import queries
from engine.store import instances as instance_store
from engine.store import timers as timer_store

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from engine.spec.library import CompiledProcedure, Library
    from engine.spec.org import OrgSpec
    from engine.store import db
    from engine.store.port import Store


@dataclass
class ReplayResult:
    instance_id: int
    ok: bool
    difference: Optional[str]
    seq: Optional[int]
    events: int


class EngineQueries:
    """The read side of ``Engine``; it uses the engine's connections, library, org and calendar."""

    if TYPE_CHECKING:
        connections: db.Connections
        store: Store
        library: Library
        org: OrgSpec
        calendar: WorkCalendar

        def procedure_for(self, conn: Connection, procedure: str, version: str) -> CompiledProcedure: ...

    def show(self, instance_id: int) -> Instance:
        with self.connections.read() as conn:
            inst = self.store.load(conn, instance_id)
            return inst.with_(children=tuple(self.store.children_of(conn, instance_id)))

    def available_actions(self, inst: Instance) -> list[dict[str, Any]]:
        if not inst.active or inst.procedure in self.library.disabled:
            return []
        with self.connections.read() as conn:
            proc = self.procedure_for(conn, inst.procedure, inst.version)
        own = [{"name": a.name, "title": a.title, "roles": list(a.roles), "form": a.form}
               for a in proc.actions_from(inst.state)]
        return own + [{"name": a.name, "title": a.title, "roles": list(a.roles), "form": a.form, "branch": name}
                      for name, br in inst.branches.items() if br["status"] == "open"
                      for a in proc.actions_from(br["state"])]

    def deadlines(self, instance_id: int) -> list[dict[str, Any]]:
        """SLA clocks and timers of an instance: name, kind, due (site zone), status."""
        with self.connections.read() as conn:
            inst = self.store.load(conn, instance_id)
        return deadline_views(inst, self.calendar)

    def tasks(self, staff: Optional[str] = None, role: Optional[str] = None) -> list[Instance]:
        """A person's inbox (their tasks, and their roles' queues within their buildings when
        they are building-scoped), or one role's whole queue."""
        with self.connections.read() as conn:
            if staff:
                person = self.org.person(staff)
                scope = self.org.building_scope(person.id)
                return queries.merged(instance_store.task_rows(conn, person.id, list(person.roles), buildings=scope),
                                      queries.branch_tasks(conn, person.id, list(person.roles), scope))
            if role:
                if role not in self.org.roles:
                    raise InputError("--role", f"unknown role {role!r}")
                return queries.merged(instance_store.task_rows(conn, None, [role]), queries.branch_tasks(conn, None, [role]))
        raise InputError("tasks", "give --as STAFF or --role ROLE")

    def history(self, instance_id: int) -> list[audit.StoredEvent]:
        with self.connections.read() as conn:
            self.store.load(conn, instance_id)
            try:
                return self.store.events_of(conn, instance_id)
            except ValueError as e:  # a stored time that is no time any more: say so, no traceback
                raise StoredDataCorrupt(f"instance {instance_id}", f"an event's time is unreadable: {e}") from None

    def replay(self, instance_id: int) -> ReplayResult:
        """Fold the log through the pinned version and compare with the stored row.

        The events are decoded straight from the rows; only when some stored value no
        longer reads are they read again as records, one step at a time, so the result
        names what is unreadable exactly as it always has.
        """
        with self.connections.read() as conn:
            try:
                stored = self.store.load(conn, instance_id)
                stored = stored.with_(children=tuple(self.store.children_of(conn, instance_id)))
                events = self.store.decoded_events(conn, instance_id)
                rows = self.store.events_of(conn, instance_id) if events is None else None
            except (StoredDataCorrupt, ValueError) as e:
                return ReplayResult(instance_id, False, f"stored value unreadable: {e}", None, 0)
            n = len(rows) if rows is not None else len(events)  # type: ignore[arg-type]  # rows is read when events is not
            try:
                if rows is not None:
                    events = [_readable(r) for r in rows]
                # Pinned per range of the log: the version it started on, then after each
                # VersionMigrated the version that event names (engine.runtime.migration).
                first = audit.started_version(events, stored.version)  # type: ignore[arg-type]  # events is set by now (decoded or read)
                proc = self.procedure_for(conn, stored.procedure, first)
                derived = audit.replay(proc, instance_id, events,  # type: ignore[arg-type]  # events is set by now (decoded or read)
                                       lambda v: self.procedure_for(conn, stored.procedure, v))
            except ReplayMismatch as e:
                return ReplayResult(instance_id, False, e.difference, e.seq, n)
        diff = audit.first_difference(derived, stored)
        return ReplayResult(instance_id, diff is None, diff, None, n)

    def verify_instance(self, instance_id: int) -> tuple[list[audit.StoredEvent], Optional[audit.BrokenLink]]:
        """One instance's log and the first broken link of its hash chain (None: intact)."""
        with self.connections.read() as conn:
            inst = self.store.load(conn, instance_id)
            rows = self.store.events_of(conn, instance_id)
        return rows, audit.verify_chain(instance_id, rows, inst.last_hash, inst.revision)

    def verify(self) -> tuple[int, int, Optional[audit.BrokenLink]]:
        """(instances checked, events checked, first broken link or None)."""
        n_inst = n_events = 0
        with self.connections.read() as conn:
            for iid, last_hash, revision, rows in self.store.iter_chains(conn):
                n_inst += 1
                if isinstance(rows, StoredDataCorrupt):
                    return n_inst, n_events, audit.BrokenLink(iid, 1, f"unreadable stored value: {rows.reason}")
                n_events += len(rows)
                broken = audit.verify_chain(iid, rows, last_hash, revision)
                if broken:
                    return n_inst, n_events, broken
        return n_inst, n_events, None

    def next_due(self) -> Optional[datetime]:
        """When the earliest pending clock step comes due (None: nothing pending); a time
        skipper (engine/timeskip.py) sweeps only when this has come."""
        with self.connections.read() as conn:
            return timer_store.next_due(conn)

    def census(self) -> Any:
        """How the instances of this database stand (engine/store/overview.py): by state, ids."""
        from engine.store import overview
        with self.connections.read() as conn:
            return overview.census(conn)


def _readable(row: audit.StoredEvent) -> Event:
    try:
        return row.to_event()
    except ValueError as e:
        raise ReplayMismatch(row.instance_id, row.seq, f"event data no longer parses ({e})") from None


def deadline_views(inst: Instance, calendar: WorkCalendar) -> list[dict[str, Any]]:
    """Each clock as ``sop show``, the API and the web give it (plain text and local times),
    read through the typed clock (engine.codec.Clock) rather than its stored text."""
    out = []
    for name, c in inst.clocks.items():
        due = c.due.astimezone(calendar.zone).isoformat() if c.due else None
        view = {"name": name, "kind": c.stored("kind"), "due": due, "status": c.stored("status")}
        if c.paused_remaining is not None:
            view["paused"] = True
        if c.kind is ClockKind.QUOTA:  # this period's count against the quota, and the periods judged
            view.update(count=c.count, required=c.required, met=c.met, missed=c.missed)
        if c.provisional:
            view["provisional"] = True
            view["provisional_years"] = list(c.provisional)
        out.append(view)
    return out


def next_deadline(inst: Instance, zone: Any) -> dict[str, Any]:
    """The task's most urgent running SLA: due (in ``zone``), its status, and whether it is
    provisional; all None/False when no SLA runs (what an inbox sorts and colours by)."""
    running = [c for c in inst.clocks.values()
               if c.kind is ClockKind.SLA and c.running and c.due and c.paused_remaining is None]
    if not running:
        return {"due": None, "sla_status": None, "provisional": False}
    first = min(running, key=lambda c: c.due)  # type: ignore[arg-type, return-value]  # only clocks with a due time are running here
    return {"due": first.due.astimezone(zone).isoformat(),  # type: ignore[union-attr]  # only clocks with a due time are running here
            "sla_status": first.stored("status"), "provisional": bool(first.provisional)}
