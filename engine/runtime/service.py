"""The engine's public API: every command runs in one database transaction.

Processing model: load the instance and its pinned procedure version, ``decide`` the
command into events (pure), fold them into the new projection, then append the events,
update the projection (guarded by the expected revision), queue notifications in the
outbox and start spawned instances — all in the same transaction, so either everything
about a step is recorded or nothing is.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

from sqlalchemy.engine import Connection

from engine.calendar import WorkCalendar
from engine.clock import Clock, SystemClock
from engine.core import clocks as clk
from engine.core.fire import decide_fire
from engine.core import decide as dc
from engine.core import evolve as ev
from engine.core import model as m
from engine.core.model import Actor, Decision, Event, Instance
from engine.errors import (ConcurrencyConflict, FieldError, FormInvalid, InputError, ReplayMismatch, StoreBusy,
                           TimeOrderError)
from engine.instants import out_of_range
from engine.spec.forms import instance_building
from engine.spec.library import CompiledProcedure, Library
from engine.spec.org import OrgSpec
from engine.store import db
from engine.store import ledger
from engine.store import instances as instance_store
from engine.store import versions as version_store
from engine.store.bulk import notification_rows
from engine.store.instance_cache import InstanceCache
from engine.store.port import store_for
from engine.runtime.queries import EngineQueries, _readable

if TYPE_CHECKING:
    from engine.runtime.batch import ActItem


# Hooks other runtime modules (timers, SLA clocks) register to act on every change.
# Each is called inside the transaction: hook(engine, conn, proc, before, after, stored_events).
ChangeHook = Callable[["Engine", Connection, CompiledProcedure, Optional[Instance], Instance, list], None]


@dataclass
class Engine(EngineQueries):
    """The facade every caller uses: commands and upkeep here, the reads in
    engine/runtime/queries.py (``EngineQueries``)."""

    store_url: str
    library: Library
    org: OrgSpec
    clock: Clock = field(default_factory=SystemClock)
    calendar: WorkCalendar = field(default_factory=WorkCalendar.default)
    hooks: list[ChangeHook] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.db = db.open_engine(self.store_url)
        db.create_schema(self.db)
        self.connections = db.Connections(self.db)
        self._versions: dict[tuple[str, str], CompiledProcedure] = {}
        self._saved_versions: set[tuple[str, str]] = set()
        self._actors: dict[str, Actor] = {}
        self.instances = InstanceCache(instance_store.INSTANCE_COLUMNS)
        # The storage port (engine/store/port.py); which building an instance sits in is
        # office policy, handed to the store here.
        self.store = store_for(self.db, instance_building, self.instances)

    # ------------------------------------------------------------ helpers

    def actor(self, staff_id: str) -> Actor:
        """A person from the org file; "system" is the engine itself and never a login.
        Remembered per id: the org file an engine holds does not change under it."""
        try:
            return self._actors[staff_id]
        except KeyError:
            person = self.org.person(staff_id)
            actor = self._actors[staff_id] = Actor(person.id, frozenset(person.roles))
            return actor

    def _time(self, at: Optional[datetime]) -> datetime:
        if at is not None and at.tzinfo is None:
            raise InputError("--at", "time needs a UTC offset, e.g. 2025-09-30T17:55:00+08:00")
        if at is not None and (why := out_of_range(at)) is not None:
            raise InputError("--at", f"{at.isoformat()} is {why}")
        return at or self.clock.now()

    def procedure_for(self, conn: Connection, procedure: str, version: str) -> CompiledProcedure:
        """The pinned version: the library's if it matches, else the stored snapshot (also
        for a disabled procedure: its instances stay readable; commands refuse them)."""
        key = (procedure, version)
        if key not in self._versions:
            current = self.library.procedures.get(procedure)
            if current is not None and current.version == version:
                self._versions[key] = current
            else:
                snap = version_store.load_snapshot(conn, procedure, version)
                if snap is None:
                    # A disabled procedure's instances are read from their stored snapshot;
                    # without one there is nothing to read them with.
                    self.library.require_enabled(procedure)
                    raise ReplayMismatch(procedure, None, f"version {version} of {procedure} is not stored")
                self._versions[key] = CompiledProcedure.from_snapshot(json.loads(snap))
        return self._versions[key]

    def _ensure_version(self, conn: Connection, proc: CompiledProcedure, at: datetime) -> None:
        key = (proc.id, proc.version)
        if key not in self._saved_versions:
            version_store.ensure_version(conn, proc.id, proc.version, proc.snapshot_json, at)
            self._saved_versions.add(key)
            self._versions[key] = proc

    # ------------------------------------------------------------ commands

    def start(self, procedure: str, staff: str, data: Optional[dict[str, Any]] = None,
              at: Optional[datetime] = None, external_key: Optional[str] = None) -> Instance:
        actor, when = self.actor(staff), self._time(at)
        proc = self.library.get(procedure)
        with self.transaction() as conn:
            if external_key:
                existing = instance_store.find_by_key(conn, external_key)
                if existing is not None:
                    return instance_store.load_instance(conn, existing)
            return self._start_in(conn, proc, actor, data or {}, when, None, external_key)

    def start_many(self, procedure: str, staff: str, rows: list[dict[str, Any]], at: Optional[datetime] = None,
                   external_keys: Optional[list[Optional[str]]] = None) -> list[Instance]:
        """Start one instance per row in one transaction, all or nothing; the instances in row
        order (a row whose external key is already stored gets its existing instance).
        See engine.runtime.bulk."""
        from engine.runtime.bulk import start_many
        return start_many(self, procedure, staff, rows, at, external_keys).instances

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.connections.read() as conn:
            yield conn

    def close(self) -> None:
        """Release the database: kept connections and the pool (the engine reopens on use)."""
        self.connections.close()

    def tick(self, until: datetime, limit: Optional[int] = None) -> list[Any]:
        """Fire every clock step due at or before ``until`` (see engine.runtime.sweep), then
        send the procedures' scheduled reports that came due (engine.runtime.reports)."""
        from engine.runtime.reports import send_due
        from engine.runtime.sweep import sweep
        fired = sweep(self, until, limit)
        if limit is None or len(fired) < limit:
            send_due(self, until)
        return fired

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction; a rollback forgets which versions were saved in it. A database
        too busy to take it (see db.busy_reason) is a StoreBusy refusal, not a crash."""
        try:
            with self.connections.write() as conn:
                ledger.begin(conn)
                yield conn
                self.store.seal(conn, self.clock.now())
        except BaseException as e:
            self._saved_versions.clear()
            reason = db.busy_reason(e)
            if reason is not None:
                raise StoreBusy(reason) from e
            raise

    def _start_in(self, conn: Connection, proc: CompiledProcedure, actor: Actor, data: dict[str, Any],
                  at: datetime, parent_id: Optional[int], external_key: Optional[str] = None) -> Instance:
        self._check_instance_refs(conn, proc.form(proc.spec.start.form), data)
        self._ensure_version(conn, proc, at)
        sent: dict[str, Any] = {}
        row = instance_store.new_row(proc.id, proc.version, proc.spec.start.state, at, parent_id, external_key)
        iid = self.store.new_instance_id(conn, row, sent)
        if iid is None:  # a concurrent import of the same record got there first
            return instance_store.load_instance(conn, instance_store.find_by_key(conn, external_key))  # type: ignore[arg-type]  # no id only when the key is taken: the row exists
        decision = dc.decide_start(proc, self.org, actor, data, at, parent_id, iid)
        events = decision.events
        if decision.folded is not None and decision.folded[0] == len(events):
            inst = decision.folded[1]  # decide folded every event after the first as it went
        else:
            inst = ev.start(iid, proc, events[0])
            for e in events[1:]:
                inst = ev.evolve(proc, inst, e)
        blank = Instance(id=iid, procedure=proc.id, version=proc.version, state=proc.spec.start.state,
                         status="starting", parent_id=parent_id, started_at=at, last_occurred_at=at)
        self.instances.inserted(blank, sent)
        return self._commit(conn, proc, blank, decision, inst, None)

    def advance(self, instance_id: int, action: str, staff: str, data: Optional[dict[str, Any]] = None,
                at: Optional[datetime] = None, expected_revision: Optional[int] = None) -> Instance:
        return self._change(instance_id, at, expected_revision,
                            self._decider("advance", self.actor(staff), action=action, data=data or {}))

    def record(self, instance_id: int, staff: str, data: dict[str, Any], at: Optional[datetime] = None,
               expected_revision: Optional[int] = None) -> Instance:
        return self._change(instance_id, at, expected_revision, self._decider("record", self.actor(staff), data=data))

    def claim(self, instance_id: int, staff: str, at: Optional[datetime] = None,
              expected_revision: Optional[int] = None) -> Instance:
        return self._change(instance_id, at, expected_revision, self._decider("claim", self.actor(staff)))

    def assign(self, instance_id: int, assignee: str, staff: str, at: Optional[datetime] = None,
               expected_revision: Optional[int] = None) -> Instance:
        return self._change(instance_id, at, expected_revision,
                            self._decider("assign", self.actor(staff), assignee=assignee))

    def _decider(self, command: str, actor: Actor, action: Optional[str] = None, data: Any = None,
                 assignee: Optional[str] = None) -> Callable[[CompiledProcedure, Instance, datetime, Connection],
                                                             Decision]:
        """The decision of one command (advance, record, claim, assign) on the instance it
        loads: what a single command and each item of a batch (engine/runtime/batch.py) run."""
        if command == "advance":
            return lambda proc, inst, when, conn: self._decide_action(conn, proc, inst, actor, action,  # type: ignore[arg-type]  # advance always names its action
                                                                     data, when)
        if command == "record":
            return lambda proc, inst, when, conn: dc.decide_record(proc, self.org, inst, actor, data, when)
        if command == "claim":
            return lambda proc, inst, when, conn: dc.decide_claim(proc, self.org, inst, actor, when)
        return lambda proc, inst, when, conn: dc.decide_assign(proc, self.org, inst, actor, assignee, when)  # type: ignore[arg-type]  # assign always names its assignee

    def act_many(self, items: Sequence["ActItem"], staff: Optional[str] = None,
                 at: Optional[datetime] = None) -> list[Instance]:
        """Many actions (advance, record, claim, assign; ``batch.ActItem``s, several on one
        instance in order) in one transaction, all or nothing: ``ItemsInvalid`` names every
        refused item and nothing is written. Each item's instance as it left it.
        See engine.runtime.batch."""
        from engine.runtime.batch import act_many
        return act_many(self, items, staff, at)

    def _change(self, instance_id: int, at: Optional[datetime], expected_revision: Optional[int],
                decide: Callable[[CompiledProcedure, Instance, datetime, Connection], Decision]) -> Instance:
        when = self._time(at)
        with self.transaction() as conn:
            return self._change_in(conn, instance_id, when, expected_revision, decide)

    def _change_in(self, conn: Connection, instance_id: int, when: datetime, expected_revision: Optional[int],
                   decide: Callable[[CompiledProcedure, Instance, datetime, Connection], Decision]) -> Instance:
        """One command on one instance inside the caller's transaction: the part a single
        command and each item of a batch (engine/runtime/batch.py) share."""
        inst = self._load_for_write(conn, instance_id)
        if expected_revision is not None and expected_revision != inst.revision:
            raise ConcurrencyConflict(instance_id, expected_revision, inst.revision)
        self._check_time(inst, when, self.calendar.zone)
        self.library.require_enabled(inst.procedure, f"instance {instance_id}")
        proc = self.procedure_for(conn, inst.procedure, inst.version)
        inst = self._catch_up(conn, proc, inst, when)
        decision = decide(proc, inst, when, conn)
        after = decision.result(proc, inst, ev.evolve)
        return self._commit(conn, proc, inst, decision, after, inst)

    def _load_for_write(self, conn: Connection, instance_id: int) -> Instance:
        """The instance a command changes: from the store, or as the batch running in this
        transaction has left it (engine/runtime/batch.py)."""
        writer = getattr(conn, "sop_batch", None)
        return self.store.load_for_write(conn, instance_id) if writer is None else writer.instance(instance_id)

    def _decide_action(self, conn: Connection, proc: CompiledProcedure, inst: Instance, actor: Actor, action: str,
                       data: dict[str, Any], when: datetime) -> Decision:
        spec = proc.action(action, inst.state)
        if spec is not None:
            self._check_instance_refs(conn, proc.form(spec.form), data)
        links = self._links(conn, proc, inst) if action in proc.link_actions else None
        return dc.decide_action(proc, self.org, inst, actor, action, data, when, links)

    @staticmethod
    def _check_instance_refs(conn: Connection, form: Any, data: dict[str, Any]) -> None:
        """Instance fields (``type: instance``) must name a stored instance of their procedure
        (CMP-10: a repeat names a complaint that exists); read in the command's transaction."""
        if form is None or not form.references:
            return
        bad = []
        for name, f in form.references:
            value = data.get(name)
            if f.type != "instance" or value is None or isinstance(value, bool):
                continue
            try:
                iid = int(value)
            except (TypeError, ValueError):
                continue  # not a number: the form's own validation says so
            if iid < 1:
                continue  # ditto
            found = instance_store.procedure_of(conn, iid)
            if found != f.procedure:
                bad.append(FieldError(name, f"no {f.procedure} #{iid}" + (f" (#{iid} is a {found})" if found else "")))
        if bad:
            raise FormInvalid(form.id, bad)

    def _links(self, conn: Connection, proc: CompiledProcedure, inst: Instance) -> Optional[dict[str, Any]]:
        """The linked instances, for guards that read them (checks.LINK_NAMES); only read for an
        action whose condition or guards name them (``link_actions``), so other commands pay
        no query."""
        if not proc.reads_links:
            return None
        writer = getattr(conn, "sop_batch", None)
        if writer is None:
            kids = self.store.child_procedures(conn, inst.id)
        else:  # the children as the batch running in this transaction has left them
            kids = writer.children(inst.id)
        return {"children": [p for p, _ in kids], "open_children": [p for p, status in kids if status == "active"]}

    def _catch_up(self, conn: Connection, proc: CompiledProcedure, inst: Instance, until: datetime) -> Instance:
        """Fire this instance's clock steps that came due before ``until`` (judged on occurred_at),
        each at its own due time, earliest first."""
        return self._fire_until(conn, proc, inst, until, strictly_before=True)

    def _fire_until(self, conn: Connection, proc: CompiledProcedure, inst: Instance, until: datetime,
                    strictly_before: bool) -> Instance:
        fired: set[tuple[str, Any, Any]] = set()
        while names := clk.due_clocks(inst, until, strictly_before):
            clock = inst.clocks[names[0]]
            step = (names[0], clock.next, clock.stored("next_kind"))  # (text: hashed for the guard only)
            if step in fired:  # every step moves its clock on; one that does not is a bug
                raise RuntimeError(f"instance {inst.id}: clock {step[0]} stays due at {step[1]} ({step[2]})")
            fired.add(step)
            inst = self._fire(conn, proc, inst, names[0])
        return inst

    def _fire(self, conn: Connection, proc: CompiledProcedure, inst: Instance, name: str) -> Instance:
        writer = getattr(conn, "sop_batch", None)  # a batch's steps share their clocks' next steps
        decision = decide_fire(proc, self.org, self.calendar, inst, name, self.clock.now(),
                               None if writer is None else writer.memo)
        after = decision.result(proc, inst, ev.evolve)
        return self._commit(conn, proc, inst, decision, after, inst)

    def fire_in(self, conn: Connection, instance_id: int, name: str,
                due: Optional[datetime] = None) -> Optional[Instance]:
        """Fire one clock step inside the caller's transaction (the sweep's unit of work);
        None if the clock has no next step, or (given ``due``) if its next step is no longer
        the one due then (an earlier firing in the same batch moved it).

        Steps of the same instance that fall due up to this one fire with it, in
        order, so one instance's history never runs out of order whatever the batch holds;
        a recurring timer's next occurrence is a new row for the sweep to find.
        """
        inst = self._load_for_write(conn, instance_id)
        clock = inst.clocks.get(name)
        step = clock.next if clock is not None else None
        if step is None or (due is not None and step != due):
            return None
        self.library.require_enabled(inst.procedure, f"instance {instance_id}")
        proc = self.procedure_for(conn, inst.procedure, inst.version)
        return self._fire_until(conn, proc, inst, step, strictly_before=False)

    def repair_clocks(self, instance_id: int, now: datetime) -> list[Any]:
        """Recompute one instance's open clock steps on this engine's calendar (after the
        calendar changed); one ClockRepaired event per clock that moved, in one transaction.
        See engine.runtime.calendar_repair."""
        from engine.runtime.calendar_repair import Repaired, repair_decision

        with self.transaction() as conn:
            inst = self.store.load_for_write(conn, instance_id)
            self.library.require_enabled(inst.procedure, f"instance {instance_id}")
            proc = self.procedure_for(conn, inst.procedure, inst.version)
            history = [_readable(r) for r in self.store.events_of(conn, instance_id)]
            decision = repair_decision(proc, self.calendar, inst, history, now)
            if not decision.events:
                return []
            after = decision.result(proc, inst, ev.evolve)
            self._commit(conn, proc, inst, decision, after, inst)
        return [Repaired(instance_id, e.data["name"], e.data["old_due"], e.data["new_due"], e.data["reason"])
                for e in decision.events if e.type == clk.CLOCK_REPAIRED]

    def _spawner(self, decision: Decision) -> Actor:
        """Who starts a linked instance: the person whose action spawned it (CMP-2: the receiver
        is on record), or the engine when a timer did."""
        first = decision.events[0].actor if decision.events else "system"
        return self.actor(first) if first != "system" and self.org.has(first) else Actor.system()

    @staticmethod
    def _check_time(inst: Instance, when: datetime, zone: Any) -> None:
        """The refusal shows the time as typed and the last event in the site's zone, not UTC."""
        if inst.last_occurred_at is not None and when < inst.last_occurred_at:
            raise TimeOrderError(inst.id, when.isoformat(), inst.last_occurred_at.astimezone(zone).isoformat())

    def _commit(self, conn: Connection, proc: CompiledProcedure, before: Instance, decision: Decision,
                after: Instance, hook_before: Optional[Instance]) -> Instance:
        recorded = self.clock.now()
        writer = getattr(conn, "sop_batch", None)
        if decision.events:
            at = decision.events[-1].occurred_at
            # a batch's items share their instants: the clocks work out a due time once per batch
            memo = None if writer is None else writer.memo
            for e in clk.react(proc, self.calendar, before, after, decision.events, at, memo):
                decision.events.append(e)
                after = ev.evolve(proc, after, e)
        spawned: list[int] = []
        for req in decision.spawns:
            child_proc = self.library.get(req.procedure, f"spawned by {proc.id} instance {before.id}")
            last_at = decision.events[-1].occurred_at if decision.events else after.last_occurred_at
            assert last_at is not None, "a spawn comes with the action's events"
            starter = self._spawner(decision)
            child = self._start_in(conn, child_proc, starter, req.data, last_at, before.id)
            spawned.append(child.id)
        if spawned:
            at = decision.events[-1].occurred_at
            extra = [Event(m.CHILD_SPAWNED, "system", None, at, {"child_id": c, "procedure": r.procedure})
                     for c, r in zip(spawned, decision.spawns)]
            for e in extra:
                after = ev.evolve(proc, after, e)
            decision.events.extend(extra)
        sent: dict[str, Any] = {}
        if writer is not None:  # a batch: its writer writes once for all its items
            stored = writer.write(proc, before, decision.events, recorded)
        else:  # (the append writes the timers rows too)
            stored = self.store.append(conn, before, decision.events, after, recorded, sent)
            self.store.insert_outbox(conn, notification_rows(before.id, stored, decision.events, recorded))
        after = after.with_(revision=stored[-1].seq if stored else before.revision,
                            last_hash=stored[-1].hash if stored else before.last_hash,
                            children=tuple(self.store.children_of(conn, before.id)) if spawned or before.children
                            else after.children)
        if writer is not None:
            writer.settled(after)
        elif stored:
            self.instances.updated(before, after, sent)
        for hook in self.hooks:
            hook(self, conn, proc, hook_before, after, stored)
        return after

    # ------------------------------------------------------------ upkeep

    def mark_created_by(self, mark: str) -> None:
        """Record which command made this database (``sop_meta``), once: ``sop demo`` recreates
        only a database it made."""
        from engine.store import overview
        with self.transaction() as conn:
            overview.mark_created_by(conn, mark)
