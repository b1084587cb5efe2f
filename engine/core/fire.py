"""Deciding what a due clock step does: warn, breach (and escalate), or fire a timer.

The clock event comes first; then the spec's effects (notify, assign = escalate, set…);
then, if the spec names one, an action the engine takes as ``system``. An action that is
not possible any more (the state moved on) is recorded as refused instead of failing the
sweep, so one instance never blocks the others.
"""
from __future__ import annotations

from datetime import datetime

from engine.calendar import WorkCalendar
from engine.core import clocks, decide as dc
from engine.core import evolve as ev
from engine.core.model import Actor, Decision, EventKind, Instance
from engine.errors import EngineError
from engine.spec.library import CompiledProcedure
from engine.spec.models import QuotaSpec, SlaSpec
from engine.spec.org import OrgSpec

AUTOMATIC_ACTION_REFUSED = EventKind.AUTOMATIC_ACTION_REFUSED
ev.register(AUTOMATIC_ACTION_REFUSED, lambda proc, inst, event: inst)


def decide_fire(proc: CompiledProcedure, org: OrgSpec, cal: WorkCalendar, inst: Instance, name: str,
                now: datetime) -> Decision:
    events, spec, at = clocks.fire_events(proc, cal, inst, name, now)
    system = Actor.system()
    b = dc._Builder(proc, org, inst, system, None, at)
    for e in events:
        b.emit(e.type, e.data)
    if isinstance(spec, QuotaSpec):
        if events[0].data["result"] == "missed":
            dc._apply_effects(b, spec.on_miss)
        return b.decision
    if isinstance(spec, SlaSpec) and events[0].type == clocks.SLA_ESCALATED:
        dc._notify(b, spec.escalate[events[0].data["rung"]].notify)
        return b.decision
    if isinstance(spec, SlaSpec):
        warning = events[0].type == clocks.SLA_WARNED
        dc._apply_effects(b, spec.on_warn if warning else spec.on_breach)
        action = None if warning else spec.breach_action
    else:
        if spec is not None and spec.when is not None and not dc._check(b, spec.when):
            return b.decision
        dc._apply_effects(b, spec.effects if spec else [])
        action = spec.action if spec else None
    if action and b.inst.active:
        try:
            follow = dc.decide_action(proc, org, b.inst, system, action, {}, at)
        except EngineError as err:
            b.emit(AUTOMATIC_ACTION_REFUSED, {"action": action, "clock": name, "reason": str(err)})
        else:
            for e in follow.events:
                b.decision.events.append(e)
                b.inst = ev.evolve(proc, b.inst, e)
            b.decision.folded = (len(b.decision.events), b.inst)
            b.decision.spawns.extend(follow.spawns)
    return b.decision
