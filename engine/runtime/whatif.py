"""``sop replay --with FILE``: what would recorded cases have done under an edited procedure?

The check a process owner runs before publishing an edit. Each recorded instance of the
procedure (started since a date) is re-run *as commands* — its start, every action with
its input data, actor and time, every ``record``, ``claim`` and ``assign`` — through the
same :class:`~engine.runtime.service.Engine` on a throw-away SQLite file and a settable
clock, with the edited definition in place of the library's. Between commands the engine's
own catch-up fires the clock steps that came due, in due order, as it does for real; after
the last command the sweep runs up to ``as of`` (default: now). No second interpreter: the
engine decides everything, and nothing is written to the real database.

Events the engine wrote by itself (actor ``system``: clock steps, timer actions, spawned
starts, a migration) are not commands; they happen again, or not, under the edited
definition. A ``DataRecorded`` is a ``record`` command unless it belongs to the command
just before it (the same actor, occurred and recorded times: an action's ``set`` effect).

The result per instance compares the final state and status and each SLA's outcome
(met, breached, cancelled, open; a running SLA whose due time is before ``as of`` counts as
breached on both sides, swept or not), and lists each command refused under the edit.
Linked instances the recorded one spawned are re-run with it, their commands merged in time
order, so a guard that reads them (``open_children``) sees them move as they did; the k-th
child of a procedure in the re-run stands for the k-th recorded one. Limits: a selected
instance that is itself a child is re-run without its parent (started by ``system``); ids
differ in the scratch database, so form fields naming another instance are not checked
again; a re-run of many months of recurring timers fires every occurrence up to ``as of``.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from engine.clock import FakeClock
from engine.codec import Clock, ClockKind, ClockStatus
from engine.core import model as m
from engine.core import parallel as pl
from engine.core import watchers as wt
from engine.core.model import Actor, Event, Instance
from engine.errors import EngineError, InputError, ProcedureError
from engine.spec.library import CompiledProcedure, Library, forms_dir_for, load_library
from engine.runtime import watching
from engine.store import instances as instance_store
from engine.store import log as event_log


@dataclass
class Refused:
    step: int
    seq: int
    command: str
    reason: str

    def __str__(self) -> str:
        return f"step {self.step} {self.command} refused: {self.reason}"


@dataclass
class WhatIf:
    """One recorded instance against its re-run under the edited definition."""

    instance: int
    recorded_state: str
    whatif_state: Optional[str]
    recorded_status: str
    whatif_status: Optional[str]
    slas: dict[str, tuple[str, str]] = field(default_factory=dict)  # name: (recorded, what-if)
    refused: list[Refused] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return (self.recorded_state == self.whatif_state and self.recorded_status == self.whatif_status
                and all(a == b for a, b in self.slas.values()) and not self.refused)

    def differences(self) -> list[str]:
        out = []
        if self.recorded_state != self.whatif_state:
            out.append(f"state {self.recorded_state}→{self.whatif_state or '(not started)'}")
        if self.recorded_status != self.whatif_status:
            out.append(f"status {self.recorded_status}→{self.whatif_status or '(not started)'}")
        out += [f"{name} SLA {a}→{b}" for name, (a, b) in self.slas.items() if a != b]
        out += [str(r) for r in self.refused]
        return out

    def view(self) -> dict[str, Any]:
        return {"instance": self.instance, "same": self.same,
                "state": {"recorded": self.recorded_state, "whatif": self.whatif_state},
                "status": {"recorded": self.recorded_status, "whatif": self.whatif_status},
                "slas": {n: {"recorded": a, "whatif": b} for n, (a, b) in self.slas.items()},
                "refused": [{"step": r.step, "seq": r.seq, "command": r.command, "reason": r.reason}
                            for r in self.refused],
                "differences": self.differences()}


def load_edited(library: Library, path: Path, roles: Any) -> CompiledProcedure:
    """The edited procedure file, with its sibling ``forms/`` folder (else the library's
    forms), checked against the library's other procedures; every problem raised at once."""
    if not path.is_file():
        raise InputError("--with", f"{path} is not a file")
    forms_dir = forms_dir_for(path.parent)
    form_paths = [forms_dir] if forms_dir.is_dir() else [p for k, p in library.files.items() if k.startswith("form:")]
    library_files = [p for k, p in library.files.items() if k.startswith("procedure:")]
    alone = load_library([path], form_paths, roles, context_paths=library_files)  # spawns resolve
    if not alone.procedures:
        raise ProcedureError(alone.issues)
    pid = next(iter(alone.procedures))
    others = [p for k, p in library.files.items() if k.startswith("procedure:") and k != "procedure:" + pid]
    lib = load_library([path, *others], form_paths, roles)
    issues = [i for i in lib.issues if not (i.file == str(path) and "differs from the file name" in i.message)]
    if issues:
        raise ProcedureError(issues)
    return lib.procedures[pid]


def sla_outcome(c: Optional[Clock], asof: datetime) -> str:
    if c is None:
        return "not started"
    if c.status in (ClockStatus.OPEN, ClockStatus.WARNED):
        if c.paused_remaining is None and c.due and c.due <= asof:
            return "breached"
        return "open"
    return c.stored("status")


def commands_of(events: list[Event]) -> list[Event]:
    """The events that were commands (see the module docstring)."""
    out, prev = [], None
    for e in events:
        if e.type == m.INSTANCE_STARTED:
            out.append(e)
        elif e.actor != "system":
            if e.type in (m.ACTION_TAKEN, pl.BRANCH_ACTION_TAKEN):
                out.append(e)
            elif e.type in (m.ASSIGNED, pl.BRANCH_ASSIGNED) and e.data.get("by") in ("claim", "manual"):
                out.append(e)
            elif (e.type, e.data.get("reason")) in ((wt.WATCHER_ADDED, "watch"), (wt.WATCHER_REMOVED, "unwatch")):
                out.append(e)
            elif e.type == m.DATA_RECORDED and not (
                    prev is not None and (prev.actor, prev.occurred_at, prev.recorded_at)
                    == (e.actor, e.occurred_at, e.recorded_at)):
                out.append(e)
        prev = e
    return out


def _tree(conn: Any, root: Instance) -> dict[int, tuple[Instance, list[Event]]]:
    """The instance and its linked descendants, each with its events, parents first."""
    out: dict[int, tuple[Instance, list[Event]]] = {}
    todo = [root]
    while todo:
        inst = todo.pop(0)
        events = [r.to_event() for r in event_log.events_of(conn, inst.id)]
        out[inst.id] = (inst, events)
        todo += [instance_store.load_instance(conn, int(e.data["child_id"])) for e in events
                 if e.type == m.CHILD_SPAWNED and int(e.data["child_id"]) not in out]
    return out


def _sandbox_class() -> Any:
    from engine.runtime.service import Engine  # the same engine, on a scratch database

    class Sandbox(Engine):
        """The engine on a scratch database. A form field naming another instance was
        checked against the real store when it was recorded; ids differ here, so it is
        not checked again."""

        @staticmethod
        def _check_instance_refs(conn: Any, form: Any, data: dict[str, Any]) -> None:
            return None

    return Sandbox


def what_if(engine: Any, edited_path: Path, procedure: Optional[str] = None, since: Optional[datetime] = None,
            asof: Optional[datetime] = None, instance_ids: Optional[list[int]] = None) -> tuple[CompiledProcedure,
                                                                                                list[WhatIf]]:
    """Re-run recorded instances of the edited procedure under it; nothing written to ``engine``'s store."""
    edited = load_edited(engine.library, edited_path, engine.org.roles)
    if procedure is not None and procedure != edited.id:
        raise InputError("--procedure", f"{edited_path} defines {edited.id!r}, not {procedure!r}")
    with engine.read() as conn:
        # As of the store's horizon: the sweep of the real store has judged clocks up to its
        # latest event (on a live store, about now), so the re-run is judged up to the same.
        asof = asof or event_log.latest_occurred_at(conn) or engine.clock.now()
        ids = instance_ids if instance_ids is not None else instance_store.instances_started_since(conn, edited.id, since)
        recorded = []
        for iid in ids:
            inst = instance_store.load_instance(conn, iid)
            if inst.procedure != edited.id:
                raise InputError("INSTANCE", f"#{iid} is a {inst.procedure}, not a {edited.id}")
            recorded.append((inst, _tree(conn, inst)))
    library = Library(procedures={**engine.library.procedures, edited.id: edited}, forms=engine.library.forms,
                      files=engine.library.files)
    scratch = Path(tempfile.mkdtemp(prefix="sop-whatif-"))
    clock = FakeClock(asof)
    sandbox = _sandbox_class()(f"sqlite:///{scratch / 'whatif.db'}", library, engine.org, clock, engine.calendar)
    try:
        results = [_rerun(sandbox, clock, edited, inst, tree, asof) for inst, tree in recorded]
    finally:
        sandbox.close()
        sandbox.db.dispose()
        shutil.rmtree(scratch, ignore_errors=True)
    return edited, results


def _rerun(sandbox: Any, clock: FakeClock, edited: CompiledProcedure, stored: Instance,
           tree: dict[int, tuple[Instance, list[Event]]], asof: datetime) -> WhatIf:
    """Re-run one recorded instance and its linked descendants (``tree``: recorded id →
    instance and events), their commands merged in time order, so guards that read the
    linked instances (``open_children``) see them move as they did."""
    refused: list[Refused] = []
    ids: dict[int, Optional[int]] = {}  # recorded id → the sandbox's instance (None: never started)
    timeline = []
    for order, (rid, (inst, events)) in enumerate(tree.items()):
        for n, e in enumerate(commands_of(events), start=1):
            if rid != stored.id and e.type == m.INSTANCE_STARTED:
                continue  # a linked instance is started by its parent's re-run, or not at all
            timeline.append((e.occurred_at, e.recorded_at, order, e.seq, n, rid, e))
    for when, _, _, _, step, rid, e in sorted(timeline, key=lambda t: t[:4]):
        clock.set(when)
        name = _step_name(e)
        if rid != stored.id:
            name = f"{tree[rid][0].procedure} #{rid} {name}"
        try:
            if e.type == m.INSTANCE_STARTED:
                ids[rid] = _start(sandbox, edited, e).id
                continue
            iid = _sandbox_id(sandbox, tree, ids, rid)
            if iid is None and tree[rid][0].parent_id is not None and rid not in ids:
                sandbox.tick(when)  # spawned by a clock step of its parent, due by now (the sweep's work)
                iid = _sandbox_id(sandbox, tree, ids, rid)
            if iid is None:
                why = "the instance was never started" if rid == stored.id else \
                    "its parent did not start it under the edited version"
                refused.append(Refused(step, e.seq, name, why))
            elif e.type in (m.ACTION_TAKEN, pl.BRANCH_ACTION_TAKEN):
                sandbox.advance(iid, e.data["action"], e.actor, dict(e.data.get("input") or {}), when)
            elif e.type == wt.WATCHER_ADDED:
                watching.watch(sandbox, iid, e.actor, when)
            elif e.type == wt.WATCHER_REMOVED:
                watching.unwatch(sandbox, iid, e.actor, when)
            elif e.type == m.DATA_RECORDED:
                sandbox.record(iid, e.actor, dict(e.data["changes"]), when)
            elif e.data.get("by") == "claim":
                sandbox.claim(iid, e.actor, when)
            else:
                sandbox.assign(iid, e.data["assignee"], e.actor, when)
        except EngineError as err:
            refused.append(Refused(step, e.seq, name, str(err)))
    clock.set(asof)
    root = ids.get(stored.id)
    if root is not None:
        sandbox.tick(asof)
    after = sandbox.show(root) if root is not None else None
    names = [s.name for s in edited.spec.slas]
    names += [n for n, c in stored.clocks.items() if c.kind is ClockKind.SLA and n not in names]
    slas = {n: (sla_outcome(stored.clocks.get(n), asof), sla_outcome(after.clocks.get(n) if after else None, asof))
            for n in names}
    slas = {n: v for n, v in slas.items() if v != ("not started", "not started")}
    return WhatIf(stored.id, stored.state, after.state if after else None, stored.status,
                  after.status if after else None, slas, refused)


_COMMANDS: dict[str, str] = {m.INSTANCE_STARTED: "start", m.DATA_RECORDED: "record"}


def _step_name(e: Event) -> str:
    """A recorded command as the report names it: its action, start, record, or how it assigned."""
    if e.type in (m.ACTION_TAKEN, pl.BRANCH_ACTION_TAKEN):
        return str(e.data.get("action"))
    return _COMMANDS.get(e.type) or str(e.data.get("by") or e.data.get("reason"))


def _sandbox_id(sandbox: Any, tree: dict[int, tuple[Instance, list[Event]]], ids: dict[int, Optional[int]],
                rid: int) -> Optional[int]:
    """The sandbox's instance for a recorded one: a linked instance is the parent's re-run's
    k-th child of its procedure, where the recorded one was the recorded parent's k-th."""
    if rid in ids:
        return ids[rid]
    inst = tree[rid][0]
    parent = inst.parent_id
    found: Optional[int] = None
    if parent in tree and (sp := _sandbox_id(sandbox, tree, ids, parent)) is not None:
        spawned = [e.data for e in tree[parent][1] if e.type == m.CHILD_SPAWNED]
        same = [int(d["child_id"]) for d in spawned if d["procedure"] == inst.procedure]
        k = same.index(rid) if rid in same else None
        again = [json.loads(r.data_json) for r in sandbox.history(sp) if r.type == m.CHILD_SPAWNED]
        mine = [int(d["child_id"]) for d in again if d["procedure"] == inst.procedure]
        if k is not None and k < len(mine):
            found = mine[k]
    if found is not None or inst.parent_id is not None:  # not spawned (yet): ask again later
        if found is not None:
            ids[rid] = found
        return found
    ids[rid] = None
    return None


def _start(sandbox: Any, edited: CompiledProcedure, e: Event) -> Instance:
    d = e.data
    data = dict(d.get("data") or {})
    if d.get("parent_id") is None and e.actor != "system" and sandbox.org.has(e.actor):
        return sandbox.start(edited.id, e.actor, data, e.occurred_at)
    with sandbox.transaction() as conn:  # a linked child (its parent is not re-run), or the engine's own
        return sandbox._start_in(conn, edited, Actor.system(), data, e.occurred_at, None)

