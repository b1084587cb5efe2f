"""Deciding what a due clock step does: warn, breach (and escalate), or fire a timer.

The clock event comes first; then the spec's effects (notify, assign = escalate, set…);
then, if the spec names one, an action the engine takes as ``system``. An action that is
not possible any more (the state moved on) is recorded as refused instead of failing the
sweep, so one instance never blocks the others.

Most steps only notify and set a value: a complaint's reply-time warning sends a message,
its breach raises the priority and sends two. Whether a step's effects are that plain is
worked out once per effects list (``_plain_effects``), and such a step is decided without
the general effect machinery (no builder, no conditions, no expression context, no fold
per notification): the same events and instance as the general path, which
tests/test_fire_plain_steps.py compares on every kind of step.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from engine.calendar import WorkCalendar
from engine.core import clocks, decide as dc
from engine.core import evolve as ev
from engine.core import model as m
from engine.core.model import Actor, Decision, Event, EventKind, Instance
from engine.errors import EngineError
from engine.spec.library import CompiledProcedure
from engine.spec.models import EffectSpec, QuotaSpec, SlaSpec, TimerSpec
from engine.spec.org import OrgSpec

AUTOMATIC_ACTION_REFUSED = EventKind.AUTOMATIC_ACTION_REFUSED
ev.register(AUTOMATIC_ACTION_REFUSED, lambda proc, inst, event: inst)


def decide_fire(proc: CompiledProcedure, org: OrgSpec, cal: WorkCalendar, inst: Instance, name: str,
                now: datetime, memo: Optional[dict[Any, Any]] = None) -> Decision:
    """What one due clock step does (see the module doc); ``memo`` is a batch's, for the
    clock's next step (``clocks._next_step``)."""
    events, spec, at = clocks.fire_events(proc, cal, inst, name, now, memo)
    plain = _plain_effects(spec, events[0])
    if plain is not None:
        return _plainly(proc, org, inst, events[0], plain)
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



# id of an effects list -> (the list, itself when it only sets literals and notifies, else None)
_PLANS: dict[int, tuple[list[EffectSpec], Optional[list[EffectSpec]]]] = {}


def _plain_effects(spec: Any, event: Event) -> Optional[list[EffectSpec]]:
    """The effects of a step that only sets literal values and notifies, unconditionally,
    and takes no action (an SLA's warning or breach, a timer without ``when``); None for
    any other step, which the general path decides. Worked out once per effects list
    (specs are frozen; the entry holds the list, so its id names no other list meanwhile)."""
    if isinstance(spec, SlaSpec):
        if event.type == clocks.SLA_WARNED:
            effects, action = spec.on_warn, None
        elif event.type == clocks.SLA_BREACHED:
            effects, action = spec.on_breach, spec.breach_action
        else:
            return None
    elif isinstance(spec, TimerSpec) and spec.when is None:
        effects, action = spec.effects, spec.action
    else:
        return None
    if action:
        return None
    hit = _PLANS.get(id(effects))
    if hit is None or hit[0] is not effects:
        if len(_PLANS) >= 1024:
            _PLANS.clear()
        plain = all((e.notify is not None or e.set is not None) and e.when is None for e in effects)
        hit = _PLANS[id(effects)] = (effects, effects if plain else None)
    return hit[1]


def _plainly(proc: CompiledProcedure, org: OrgSpec, inst: Instance, clock_event: Event,
             effects: list[EffectSpec]) -> Decision:
    """A step of ``_plain_effects``: its clock event, then per effect a DataRecorded or a
    NotificationQueued (none once the instance is not active, where ``_apply_effects``
    stops; neither changes that), all at the clock event's time and by ``system``, exactly
    as the general path emits them. Folded by ``evolve`` onto one draft of the instance but
    for the notifications, whose fold sets only ``last_occurred_at``: already their time,
    since the clock event's."""
    after = ev.fold_on(proc, ev.draft_of(inst), clock_event)  # one copy of the instance for the step
    events = [clock_event]
    at = clock_event.occurred_at
    if inst.active:
        for effect in effects:
            if effect.set is not None:
                e = Event(m.DATA_RECORDED, "system", None, at,
                          {"changes": {k: dc._json_value(v) for k, v in effect.set.items()}})
                after = ev.fold_on(proc, after, e)
            else:
                e = Event(m.NOTIFICATION_QUEUED, "system", None, at, dc.notice_data(effect.notify, org, after))  # type: ignore[arg-type]  # the effect's only other kind: notify
            events.append(e)
    return Decision(events=events, folded=(len(events), ev.finish(after)))
