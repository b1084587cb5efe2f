"""``sop migrate``: move running instances of a procedure from one version onto another.

A procedure's version is the hash of its definition (engine.spec.library), and an instance
stays on the version it was started on. Migrating one appends a ``VersionMigrated`` event
({from, to, state_from, state_to, mapped}) through the normal append path, in the same
transaction as its projection (the row's ``version`` and ``state``) and the new version's
snapshot in ``procedure_versions``; replay folds the events before it under the old
version and the events after it under the new one (``evolve.fold``'s ``versions``).

The rules, per instance:

* its state must be a state of the new version, or be mapped (``--map old=new``) to one;
  a map target that is not a (non-final) state of the new version is refused;
* clock steps that came due before the migration fire first, under the old version (the
  catch-up every command does);
* an SLA clock or timer still running whose spec (by name) the new version no longer has
  is cancelled with its clock event (``SlaCancelled`` / ``TimerCancelled``, ``reason:
  migrated``); every other clock keeps its state as it is (due time, warnings, pause) —
  a changed goal or delay applies to clocks started after the migration; the new
  version's clocks then react as after any event (a mapped state that pauses an SLA
  pauses it); a clock the new version adds starts when its own start condition next occurs;
* data is carried over as it is: a field the new version's forms require and the
  instance lacks is left missing (the form asks for it at the next action that uses it).

All or nothing per run: every instance is planned in one transaction; if any is refused,
nothing is written and the refusal names every refused instance with its reason.
``dry_run`` does the same work and rolls it back, so it shows exactly what would happen.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from engine.codec import ClockKind, ClockStatus
from engine.core import clocks as clk
from engine.core import evolve as ev
from engine.core import model as m
from engine.core.model import Decision, Event, Instance
from engine.errors import EngineError, InputError, NotAuthorized
from engine.spec.library import CompiledProcedure
from engine.store import instances as instance_store
from engine.store import versions as version_store


class MigrationRefused(EngineError):
    """Instances that cannot move onto the new version; nothing was migrated."""

    code = "migration_refused"

    def __init__(self, procedure: str, refusals: list[tuple[int, str]]) -> None:
        self.procedure = procedure
        self.refusals = list(refusals)
        named = "; ".join(f"#{iid}: {why}" for iid, why in self.refusals)
        super().__init__(f"migrate {procedure}: nothing migrated, {len(self.refusals)} instance(s) refused: {named}")


@dataclass
class Migrated:
    """One instance moved (or, in a dry run, that would move)."""

    instance: int
    version_from: str
    version_to: str
    state_from: str
    state_to: str
    mapped: bool
    cancelled: list[str] = field(default_factory=list)
    fired: int = 0  # events appended by the clock steps that came due before the migration (fired first)

    def view(self) -> dict[str, Any]:
        return {"instance": self.instance, "from": self.version_from, "to": self.version_to,
                "state_from": self.state_from, "state_to": self.state_to, "mapped": self.mapped,
                "cancelled_clocks": self.cancelled, "fired_first": self.fired}


class _DryRun(Exception):
    """Rolls a dry run's transaction back."""


def parse_map(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        old, sep, new = p.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InputError("--map", f"expected old_state=new_state, got {p!r}")
        if old.strip() in out:
            raise InputError("--map", f"state {old.strip()!r} is mapped twice")
        out[old.strip()] = new.strip()
    return out


def resolve_version(engine: Any, conn: Any, procedure: str, version: str, what: str) -> CompiledProcedure:
    """``current`` (the library's version), or a version hash the library or the store holds."""
    current = engine.library.get(procedure)
    if version == "current" or version == current.version:
        return current
    if version_store.load_snapshot(conn, procedure, version) is None:
        raise InputError(what, f"no version {version!r} of {procedure} is stored (current: {current.version})")
    return engine.procedure_for(conn, procedure, version)


def migrate(engine: Any, procedure: str, version_from: str, version_to: str, mapping: dict[str, str],
            dry_run: bool = False, at: Optional[datetime] = None, by: Optional[str] = None) -> list[Migrated]:
    """Move every active instance of ``procedure`` on ``version_from`` (``any``: on any
    version but the target) onto ``version_to`` (``current``: the library's), as the
    supervisor ``by``: each instance's VersionMigrated event names them, so an auditor sees
    who moved it (``None``: the engine itself, ``system``)."""
    when = engine._time(at)
    actor = "system" if by is None else _supervisor(engine, by, procedure)
    done: list[Migrated] = []
    try:
        with engine.transaction() as conn:
            new = resolve_version(engine, conn, procedure, version_to, "--to")
            if version_from == "any":  # every version but the target
                ids = instance_store.active_on_version(conn, procedure, new.version, other=True)
            else:
                old = resolve_version(engine, conn, procedure, version_from, "--from")
                if old.version == new.version:
                    raise InputError("--to", f"instances of {procedure} are already on version {new.version}")
                ids = instance_store.active_on_version(conn, procedure, old.version)
            refusals: list[tuple[int, str]] = []
            if ids:
                engine._ensure_version(conn, new, when)
            for iid, version in ids:
                try:
                    old = engine.procedure_for(conn, procedure, version)
                    done.append(_migrate_one(engine, conn, old, new, iid, mapping, when, actor))
                except _Refused as r:
                    refusals.append((iid, r.reason))
                except EngineError as e:  # e.g. a time before the instance's last event
                    refusals.append((iid, str(e)))
            if refusals:
                raise MigrationRefused(procedure, refusals)
            if dry_run:
                raise _DryRun()
    except _DryRun:
        pass
    return done


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _supervisor(engine: Any, staff: str, procedure: str) -> str:
    """``staff``'s id if they may migrate (a supervising role), else NotAuthorized."""
    person = engine.actor(staff)
    allowed = sorted(engine.org.supervising_roles)
    if not set(person.roles) & set(allowed):
        raise NotAuthorized(person.id, f"migrate {procedure}", allowed)
    return str(person.id)


def _migrate_one(engine: Any, conn: Any, old: CompiledProcedure, new: CompiledProcedure, iid: int,
                 mapping: dict[str, str], when: datetime, actor: str) -> Migrated:
    inst = engine.store.load_for_write(conn, iid)
    engine._check_time(inst, when, engine.calendar.zone)
    revision = inst.revision
    inst = engine._catch_up(conn, old, inst, when)
    fired = inst.revision - revision
    if not inst.active:  # a timer's action finished it on the way
        raise _Refused(f"became {inst.status} while its due clock steps fired")
    if inst.branches:  # the branches' states and join are the old version's until the join
        raise _Refused(f"it is in the parallel branches of {inst.state!r}; migrate it after their join")
    state_to = mapping.get(inst.state, inst.state)
    mapped = inst.state in mapping
    target = new.spec.states.get(state_to)
    if target is None:
        known = ", ".join(new.spec.states)
        if mapped:
            raise _Refused(f"--map {inst.state}={state_to}: {state_to!r} is not a state of version {new.version} "
                           f"(states: {known})")
        raise _Refused(f"state {inst.state!r} is not in version {new.version}; give --map {inst.state}=NEW_STATE "
                       f"(states: {known})")
    if target.kind == "final":
        raise _Refused(f"--map {inst.state}={state_to}: {state_to!r} is a final state; a migration does not finish "
                       "an instance")
    events = [Event(m.VERSION_MIGRATED, actor, None, when,
                    {"from": old.version, "to": new.version, "state_from": inst.state, "state_to": state_to,
                     "mapped": mapped})]
    after = ev.evolve(new, inst, events[0])
    cancelled = []
    slas, timers = {s.name for s in new.spec.slas}, {t.name for t in new.spec.timers}
    for name, c in inst.clocks.items():
        sla = c.kind is ClockKind.SLA
        if name in (slas if sla else timers) or not c.running:
            continue
        cc = c.with_(running=False, next=None, next_kind=None, ended_at=when)
        if sla:
            if c.status is not ClockStatus.BREACHED:
                cc = cc.with_(status=ClockStatus.CANCELLED)
            e = clk.clock_event(clk.SLA_CANCELLED, name, cc, when, reason="migrated")
        else:
            cc = cc.with_(status=ClockStatus.CANCELLED)
            e = clk.clock_event(clk.TIMER_CANCELLED, name, cc, when, reason="migrated")
        events.append(e)
        after = ev.evolve(new, after, e)
        cancelled.append(name)
    engine._commit(conn, new, inst, Decision(events=events), after, inst)
    return Migrated(iid, old.version, new.version, inst.state, state_to, mapped, cancelled, fired)
