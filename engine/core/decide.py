"""Decide what a command means: validate it against the pinned procedure and return events.

Pure: the caller passes "now" (``at``) and the organisation; nothing here reads a clock
or a database. Each decision folds its own events as it goes (through :mod:`evolve`) so a
later effect sees the data an earlier one set, exactly as replay will.
"""
from __future__ import annotations

import difflib

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Optional, Sequence
from zoneinfo import ZoneInfo

from engine.codec import ClockStatus
from engine.core import evolve as ev
from engine.core import model as m
from engine.core import parallel as pl
from engine.core import watchers as wt
from engine.core.model import Actor, Decision, Event, Instance, SpawnRequest
from engine.errors import ActionNotAllowed, FieldError, FormInvalid, NotAuthorized, OutOfScope
from engine.spec.expr import EvalError
from engine.spec.forms import FieldSpec, FormSpec, building_of, instance_building
from engine.spec.library import CompiledProcedure
from engine.spec.models import AssignSpec, EffectSpec, NotifySpec
from engine.spec.org import OrgSpec


@dataclass
class _Builder:
    """Accumulates events and the instance they produce, for one command."""

    proc: CompiledProcedure
    org: OrgSpec
    inst: Instance
    actor: Actor
    role: Optional[str]
    at: datetime
    decision: Decision = field(default_factory=Decision)
    # The expression context of ``inst`` (without extra values), kept until an event
    # changes the instance: a start checks the ``when`` of each of its effects in turn.
    _context: Optional[tuple[Instance, dict[str, Any]]] = field(default=None, repr=False)

    def emit(self, type_: str, data: dict[str, Any], actor: Optional[Actor] = None) -> None:
        who = actor or self.actor
        e = Event(type_, who.id, self.role if who is self.actor else None, self.at, data)
        self.decision.events.append(e)
        if type_ != m.INSTANCE_STARTED:
            before = self.inst
            self.inst = ev.evolve(self.proc, self.inst, e)
            self.decision.folded = (len(self.decision.events), self.inst)
            self._carry_context(before, type_, data)

    def _carry_context(self, before: Instance, type_: str, data: dict[str, Any]) -> None:
        """Keep the expression context across an event that changes only data (a computed
        or set value) or nothing it holds (a notification): the next effect's ``when`` and
        ``compute`` read the same context with those values updated, instead of every field
        typed again (a start's effects are a chain of such events)."""
        if self._context is None or self._context[0] is not before:
            return
        if type_ == m.NOTIFICATION_QUEUED:
            self._context = (self.inst, self._context[1])
        elif type_ == m.DATA_RECORDED and not _INSTANCE_NAMES.intersection(data["changes"]):
            ctx = dict(self._context[1])
            for k, v in data["changes"].items():
                ctx[k] = typed(self.proc.fields.get(k), v)
            self._context = (self.inst, ctx)

    def context(self, extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        if extra is None and self._context is not None and self._context[0] is self.inst:
            return self._context[1]
        ctx = expression_context(self.proc, self.inst, self.at, self.actor.id, extra, self.org,
                                 sorted(self.actor.roles))
        if extra is None:
            self._context = (self.inst, ctx)
        return ctx


# What ``expression_context`` sets over the data: a field of the same name is hidden by it.
_INSTANCE_NAMES = frozenset({"id", "state", "assignee", "procedure", "now", "actor", "actor_roles", "parent_id",
                             "site_name", "site_greeting"})


def expression_context(proc: CompiledProcedure, inst: Instance, at: datetime, actor: str,
                       extra: Optional[dict[str, Any]] = None, org: Optional[OrgSpec] = None,
                       actor_roles: Iterable[str] = ()) -> dict[str, Any]:
    """What an expression can read: the data (typed) and a few instance and site names.

    ``now`` is in the site's zone, so ``date(now)`` is the local date.
    """
    data = {**inst.data, **(extra or {})}
    ctx = {k: typed(proc.fields.get(k), v) for k, v in data.items()}
    zone = ZoneInfo(org.site.zone) if org else None
    ctx.update(id=inst.id, state=inst.state, assignee=inst.assignee, procedure=inst.procedure,
               now=at.astimezone(zone) if zone else at, actor=actor, actor_roles=list(actor_roles),
               parent_id=inst.parent_id, site_name=org.site.name if org else None,
               site_greeting=org.site.greeting if org else None)
    return ctx


def typed(spec: Optional[FieldSpec], value: Any) -> Any:
    """JSON values back to what they mean: money as Decimal, dates as dates."""
    if spec is None or value is None or not isinstance(value, str):
        return value
    try:
        if spec.type == "money":
            return Decimal(value)
        if spec.type == "date":
            return date.fromisoformat(value)
        if spec.type == "datetime":
            return datetime.fromisoformat(value)
    except (ValueError, InvalidOperation):
        return value
    return value


def _json_value(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def _check(b: _Builder, source: Optional[str], extra: Optional[dict[str, Any]] = None) -> bool:
    if source is None:
        return True
    try:
        return bool(b.proc.expr(source).evaluate(b.context(extra)))
    except EvalError as e:
        raise ActionNotAllowed("(condition)", f"condition {source!r} could not be evaluated: {e}") from None


def _role_for(actor: Actor, allowed: Iterable[str]) -> Optional[str]:
    for r in allowed:
        if r in actor.roles:
            return r
    return None


def check_scope(org: OrgSpec, inst: Instance, actor: Actor, what: str) -> None:
    """Refuse a building-scoped person (``OrgSpec.building_scope``) an instance outside
    their scope: they work on what is assigned to them, and on what waits unassigned in a
    queue of their buildings (or of no building: an anonymous complaint). Roles alone are
    not enough, or any steward could act on another building's case. Supervisors, staff
    without buildings and the engine itself are not limited."""
    buildings = org.building_scope(actor.id)
    if buildings is None or inst.assignee == actor.id:
        return
    building = instance_building(inst.data)
    if inst.assignee is None and (building is None or building in buildings):
        return
    raise OutOfScope(actor.id, what, inst.id, building, buildings, inst.assignee, list(org.supervising_roles))


def _validate(form: Optional[FormSpec], data: dict[str, Any], context: dict[str, Any], what: str,
              org: Optional[OrgSpec] = None) -> dict[str, Any]:
    if form is None:
        if data:
            raise FormInvalid(what, [FieldError(k, "this step takes no data") for k in data])
        return {}
    values = form.validate_data(data, context)
    if org is not None and form.references:
        unknown = [FieldError(k, f"no staff member {v!r} in the organisation file" +
                              (f" (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(
                                  str(v), [p.id for p in org.staff], n=1)) else ""))
                   for k, f in form.references
                   if f.type == "staff" and (v := values.get(k)) is not None and not org.has(v)]
        if unknown:
            raise FormInvalid(what, unknown)
    return values


# ---------------------------------------------------------------- commands

def decide_start(proc: CompiledProcedure, org: OrgSpec, actor: Actor, data: dict[str, Any],
                 at: datetime, parent_id: Optional[int] = None, instance_id: int = 0) -> Decision:
    """Start an instance. A linked child (``parent_id``) is authorised by the parent's action,
    so its starter needs none of the child's start roles."""
    role = _role_for(actor, proc.spec.start.roles)
    if role is None and actor.id != "system" and parent_id is None:
        raise NotAuthorized(actor.id, f"start {proc.id}", proc.spec.start.roles)
    form = proc.form(proc.spec.start.form)
    values = _validate(form, data, {}, f"{proc.id} start", org)
    inst = Instance(id=instance_id, procedure=proc.id, version=proc.version, state=proc.spec.start.state,
                    data=dict(values), parent_id=parent_id, started_at=at, last_occurred_at=at)
    b = _Builder(proc, org, inst, actor, role, at)
    b.emit(m.INSTANCE_STARTED, {"procedure": proc.id, "version": proc.version,
                                "state": inst.state, "data": values, "parent_id": parent_id})
    _apply_effects(b, proc.spec.start.effects)
    _enter_state(b, inst.state)
    return b.decision


def decide_action(proc: CompiledProcedure, org: OrgSpec, inst: Instance, actor: Actor, name: str,
                  data: dict[str, Any], at: datetime, links: Optional[dict[str, Any]] = None) -> Decision:
    """Take action ``name``. ``links`` are the names of checks.LINK_NAMES (the linked
    instances, read by the shell in the same transaction) for the action's guard."""
    if not inst.active:
        raise ActionNotAllowed(name, f"instance {inst.id} is {inst.status}")
    action = proc.action(name, inst.state)
    if action is None:
        branch = pl.branch_for(proc, inst, name) if inst.branches else None
        if branch is not None:  # an action of one of the open parallel branches
            return pl.decide_branch_action(_Builder(proc, org, inst, actor, None, at), branch, name, data, links)
        return _no_such_action(proc, inst, name)
    role = _role_for(actor, action.roles)
    if role is None:
        raise NotAuthorized(actor.id, f"take {name!r}", action.roles)
    check_scope(org, inst, actor, f"take {name!r}")
    values = _validate(proc.form(action.form), data, dict(inst.data), action.form or name, org)
    b = _Builder(proc, org, inst, actor, role, at)
    seen = {**values, **links} if links else values
    if not _check(b, action.when, seen):
        reason = action.refusal or f"condition not met: {action.when}"
        raise ActionNotAllowed(name, reason)
    for guard in action.guards:
        if not _check(b, guard.when, seen):
            raise ActionNotAllowed(name, guard.refusal)
    before = inst.state
    b.emit(m.ACTION_TAKEN, {"action": name, "from": before, "to": action.to or before, "input": values})
    _apply_effects(b, action.effects)
    if b.inst.active and action.to and action.to != before:
        _enter_state(b, action.to)
    return b.decision


def _no_such_action(proc: CompiledProcedure, inst: Instance, name: str) -> Decision:
    states = [inst.state, *sorted(pl.open_states(inst))]
    here = ", ".join(dict.fromkeys(a.name for s in states for a in proc.actions_from(s))) or "(none)"
    if any(a.name == name for a in proc.spec.actions):
        raise ActionNotAllowed(name, f"not available in state {inst.state!r}; available: {here}")
    raise ActionNotAllowed(name, f"{proc.id} has no such action; available in {inst.state!r}: {here}")


def decide_record(proc: CompiledProcedure, org: OrgSpec, inst: Instance, actor: Actor,
                  data: dict[str, Any], at: datetime) -> Decision:
    """Record data on an open instance without moving it (e.g. a note, a new contact)."""
    if not inst.active:
        raise ActionNotAllowed("record", f"instance {inst.id} is {inst.status}")
    allowed = _working_roles(proc, org, inst)
    role = _role_for(actor, allowed)
    if role is None and inst.assignee != actor.id:
        raise NotAuthorized(actor.id, f"record data on instance {inst.id}", sorted(allowed))
    check_scope(org, inst, actor, f"record data on instance {inst.id}")
    if not data:
        raise FormInvalid("record", [FieldError("(data)", "nothing to record")])
    unknown = [k for k in data if k not in proc.fields]
    if unknown:
        raise FormInvalid("record", [FieldError(k, "unknown field of " + proc.id) for k in unknown])
    fixed = [k for k in data if k not in recordable_fields(proc)]
    if fixed:
        raise FormInvalid("record", [FieldError(k, "is set by an action of the procedure, not recorded directly")
                                     for k in fixed])
    form = FormSpec(id="record", title="记录", fields={
        k: f.model_copy(update={"required": False, "required_if": None}) for k, f in proc.fields.items() if k in data})
    values = form.validate_data(data)
    b = _Builder(proc, org, inst, actor, role, at)
    b.emit(m.DATA_RECORDED, {"changes": values})
    return b.decision


def recordable_fields(proc: CompiledProcedure) -> set[str]:
    """Fields ``record`` may change: the start form's (a new contact, a correction) unless
    marked otherwise, and any field marked ``recordable: true``. Decisions (approvals,
    levels, verdicts) are only ever set by the action that decides them."""
    start = proc.form(proc.spec.start.form)
    out = {k for k, f in (start.fields.items() if start else ()) if f.recordable is not False}
    return out | {k for k, f in proc.fields.items() if f.recordable}


def _working_roles(proc: CompiledProcedure, org: OrgSpec, inst: Instance) -> set[str]:
    """Roles that may work on ``inst`` now: its state's actions', its owner, the supervisors."""
    roles = {r for a in proc.actions_from(inst.state) for r in a.roles}
    owner = proc.spec.states[inst.state].owner
    return roles | ({owner} if owner else set()) | set(org.supervising_roles)


def decide_claim(proc: CompiledProcedure, org: OrgSpec, inst: Instance, actor: Actor, at: datetime) -> Decision:
    if not inst.active:
        raise ActionNotAllowed("claim", f"instance {inst.id} is {inst.status}")
    if inst.branches:
        return pl.decide_branch_claim(_Builder(proc, org, inst, actor, None, at))
    if inst.assignee == actor.id:
        raise ActionNotAllowed("claim", f"instance {inst.id} is already assigned to you")
    if inst.assignee is not None:
        raise ActionNotAllowed("claim", f"instance {inst.id} is assigned to {inst.assignee}; "
                                        "ask a supervisor to reassign it")
    queue = inst.assignee_role or proc.spec.states[inst.state].owner
    allowed = [queue] if queue else sorted(_working_roles(proc, org, inst))
    role = _role_for(actor, allowed)
    if role is None:
        raise NotAuthorized(actor.id, f"claim instance {inst.id}", allowed)
    check_scope(org, inst, actor, f"claim instance {inst.id}")
    b = _Builder(proc, org, inst, actor, role, at)
    b.emit(m.ASSIGNED, {"assignee": actor.id, "role": inst.assignee_role or role, "by": "claim"})
    return b.decision


def decide_assign(proc: CompiledProcedure, org: OrgSpec, inst: Instance, actor: Actor, assignee: str,
                  at: datetime) -> Decision:
    if not inst.active:
        raise ActionNotAllowed("assign", f"instance {inst.id} is {inst.status}")
    role = _role_for(actor, org.supervising_roles)
    if role is None:
        raise NotAuthorized(actor.id, f"assign instance {inst.id}", list(org.supervising_roles))
    person = org.person(assignee)
    able = _working_roles(proc, org, inst)
    if not able & set(person.roles):
        raise NotAuthorized(person.id, f"work on instance {inst.id} in state {inst.state!r}", sorted(able))
    b = _Builder(proc, org, inst, actor, role, at)
    previous = inst.assignee if inst.assignee != person.id else None
    b.emit(m.ASSIGNED, {"assignee": person.id, "role": inst.assignee_role, "by": "manual"})
    _watch(b, [previous], "reassigned")  # reassignment must not lose the worker
    return b.decision


# ---------------------------------------------------------------- effects

def _enter_state(b: _Builder, state: str) -> None:
    spec = b.proc.spec.states[state]
    if spec.assign is not None or spec.owner is not None:
        assignee, role = resolve_assignment(spec.assign, spec.owner, b.org, b.inst)
        if spec.assign is None and _can_act(b.proc, b.org, b.inst.assignee, state):
            # The person already on it keeps it (a supervisor who took over an escalated or
            # anonymous complaint stays on it), in the owner's queue if they hold that role.
            assignee = b.inst.assignee
            role = spec.owner if _holds(b.org, assignee, spec.owner) else b.inst.assignee_role
        if (assignee, role) != (b.inst.assignee, b.inst.assignee_role):
            b.emit(m.ASSIGNED, {"assignee": assignee, "role": role, "by": "rule"})
    _apply_effects(b, spec.on_enter)
    if spec.kind == "parallel" and b.inst.active and b.inst.state == state:
        pl.fork(b, state)
    if spec.kind == "final" and b.inst.active:
        b.emit(m.INSTANCE_COMPLETED, {"state": state})


def _can_act(proc: CompiledProcedure, org: OrgSpec, staff: Optional[str], state: str) -> bool:
    if not staff or not org.has(staff):
        return False
    return not proc.roles_acting_in(state).isdisjoint(org.person(staff).roles)


def _holds(org: OrgSpec, staff: Optional[str], role: Optional[str]) -> bool:
    return bool(staff and role and org.has(staff) and role in org.person(staff).roles)


def resolve_assignment(rule: Optional[AssignSpec], owner: Optional[str], org: OrgSpec,
                       inst: Instance) -> tuple[Optional[str], Optional[str]]:
    """Person (or None) and role queue for a state's assignment rule."""
    role = (rule.role if rule else None) or owner
    person: Optional[str] = None
    if rule and rule.staff:
        person = rule.staff
    elif rule and rule.staff_from and org.has(str(inst.data.get(rule.staff_from))):
        person = str(inst.data[rule.staff_from])
    elif rule and rule.steward_of:
        person = org.steward_of_building(building_of(inst.data.get(rule.steward_of)))
    return person, role


def _apply_effects(b: _Builder, effects: list[EffectSpec]) -> None:
    for e in effects:
        if not b.inst.active:
            return
        if not _check(b, e.when):
            continue
        if e.set is not None:
            b.emit(m.DATA_RECORDED, {"changes": {k: _json_value(v) for k, v in e.set.items()}})
        elif e.compute is not None:
            ctx = b.context()
            changes = {}
            for k, src in e.compute.items():
                try:
                    changes[k] = _json_value(b.proc.expr(src).evaluate(ctx))
                except EvalError as err:
                    raise ActionNotAllowed("(effect)", f"cannot compute {k}: {err}") from None
            b.emit(m.DATA_RECORDED, {"changes": changes})
        elif e.acknowledge is not None:
            from engine.core.clocks import acknowledged  # clocks builds on decide: imported here

            clock = b.inst.clocks.get(e.acknowledge)
            if clock is None or clock.status is not ClockStatus.BREACHED or clock.acknowledged_at is not None:
                raise ActionNotAllowed("(effect)", f"{e.acknowledge} has no escalation to acknowledge")
            ack = acknowledged(clock, e.acknowledge, b.actor.id, b.at)
            b.emit(ack.type, ack.data)
        elif e.assign is not None:
            previous = b.inst.assignee
            assignee, role = resolve_assignment(e.assign, None, b.org, b.inst)
            b.emit(m.ASSIGNED, {"assignee": assignee, "role": role, "by": "rule"})
            if e.assign.keep_watching and previous != assignee:
                _watch(b, [previous], "reassigned")
        elif e.watch is not None:
            _watch(b, wt.watch_targets(e.watch, b.org, b.inst), "effect")
        elif e.notify is not None:
            _notify(b, e.notify)
        elif e.spawn is not None:
            if _check(b, e.spawn.when):
                ctx = b.context()
                data = {k: _json_value(b.proc.expr(src).evaluate(ctx)) for k, src in e.spawn.data.items()}
                data = {k: v for k, v in data.items() if v is not None}
                b.decision.spawns.append(SpawnRequest(e.spawn.procedure, data))
        elif e.complete:
            b.emit(m.INSTANCE_COMPLETED, {"state": b.inst.state})


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


_TEMPLATES: dict[str, tuple[str, ...]] = {}  # message text -> literal, field, literal, …, literal


def render(template: str, values: dict[str, Any]) -> str:
    """Fill ``{field}`` placeholders; unlike str.format, no attribute or index access.

    A procedure has a few message texts, filled for every notification a command or a
    fired step sends: each is split at its placeholders once (the split of the very
    pattern a substitution would match), so filling it is one join, not a regex pass."""
    parts = _TEMPLATES.get(template)
    if parts is None:
        if len(_TEMPLATES) >= 512:
            _TEMPLATES.clear()
        parts = _TEMPLATES[template] = tuple(_PLACEHOLDER.split(template))
    if len(parts) == 1:
        return template
    out = [parts[0]]
    for i in range(1, len(parts), 2):
        out.append(str(values.get(parts[i], "")))
        out.append(parts[i + 1])
    return "".join(out)


# (NotifySpec, OrgSpec) by their ids -> (the two, their recipients): for a spec naming only a
# staff member and/or a role, the same people for every instance of the site.
_FIXED_RECIPIENTS: dict[tuple[int, int], tuple[NotifySpec, OrgSpec, tuple[str, ...]]] = {}


def notification_recipients(spec: NotifySpec, org: OrgSpec, inst: Instance) -> list[str]:
    """Who a notification goes to, in order, each once. A spec that reads nothing of the
    instance (only ``staff`` and ``role``) is worked out once per site (frozen specs; the
    entry holds both, so their ids name no other object meanwhile)."""
    if spec.staff_from or spec.steward_of or spec.assignee or spec.watchers:
        return _recipients(spec, org, inst)
    hit = _FIXED_RECIPIENTS.get((id(spec), id(org)))
    if hit is None or hit[0] is not spec or hit[1] is not org:
        if len(_FIXED_RECIPIENTS) >= 256:
            _FIXED_RECIPIENTS.clear()
        hit = _FIXED_RECIPIENTS[(id(spec), id(org))] = (spec, org, tuple(_recipients(spec, org, inst)))
    return list(hit[2])


def _recipients(spec: NotifySpec, org: OrgSpec, inst: Instance) -> list[str]:
    people: list[str] = []
    if spec.staff:
        people.append(spec.staff)
    if spec.staff_from and org.has(str(inst.data.get(spec.staff_from))):
        people.append(str(inst.data[spec.staff_from]))
    if spec.role:
        people += [s.id for s in org.holders(spec.role)]
    if spec.steward_of:
        s = org.steward_of_building(building_of(inst.data.get(spec.steward_of)))
        if s:
            people.append(s)
    if spec.assignee and inst.assignee:
        people.append(inst.assignee)
    if spec.watchers:
        people += list(inst.watchers)
    return list(dict.fromkeys(people))


def _watch(b: _Builder, people: Sequence[Optional[str]], reason: str) -> None:
    for data in wt.watch_events(b.inst, people, reason):
        b.emit(wt.WATCHER_ADDED, data)


def _notify(b: _Builder, spec: NotifySpec) -> None:
    b.emit(m.NOTIFICATION_QUEUED, notice_data(spec, b.org, b.inst))


def notice_data(spec: NotifySpec, org: OrgSpec, inst: Instance) -> dict[str, Any]:
    """A NotificationQueued event's data: recipients, the message filled from the instance, channel."""
    text = render(spec.message, {**inst.data, "id": inst.id, "state": inst.state})
    return {"recipients": notification_recipients(spec, org, inst), "message": text, "channel": spec.channel}
