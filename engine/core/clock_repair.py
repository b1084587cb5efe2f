"""Recomputing a clock's due time after the working calendar changed (issue 11).

Pure, like the rest of ``core``: given the instance's history, a clock's due time is counted
again from the event it was counted from. engine/runtime/calendar_repair.py records the
result as one ClockRepaired event per clock that moved.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from engine.calendar import WorkCalendar
from engine.codec import Clock, ClockKind, ClockStatus, clock_of_payload
from engine.core.clocks import (SLA_PAUSED, SLA_RESUMED, SLA_RESET, SLA_STARTED, TIMER_ARMED, TIMER_FIRED,
                                _next_step, sla_uses_calendar, stamp, timer_uses_calendar)
from engine.core.due_times import first_fire
from engine.core.model import Event, Instance
from engine.durations import parse_duration
from engine.schedules import parse_schedule
from engine.spec.library import CompiledProcedure

# The clock events whose time and clock fix where a due time is counted from.
BASES = (SLA_STARTED, SLA_RESUMED, SLA_RESET, TIMER_ARMED, TIMER_FIRED)


def repaired(proc: CompiledProcedure, cal: WorkCalendar, inst: Instance, name: str,
             history: list[Event]) -> Optional[Clock]:
    """The clock ``name`` recomputed on ``cal`` from the event its due time was counted from,
    or None when nothing about it changes (or it has no open step to move).

    ``history`` is the instance's events. The basis is the clock's last start, resume,
    reset, arming or firing: an SLA's goal from its start, the remaining working time from a
    resume (as measured when it paused), a timer's delay, date field or schedule from its
    arming or its last occurrence. A reset's due time comes from a field, not the calendar,
    so only its warning steps can move. Thresholds already passed stay passed.
    """
    typed = inst.clocks.get(name)
    if typed is None:
        return None
    if not typed.running or typed.next is None or typed.status is ClockStatus.BREACHED:
        return None
    if typed.kind is ClockKind.QUOTA:  # each period's end is computed when the last one is judged
        return None
    basis = next((e for e in reversed(history) if e.type in BASES and e.data.get("name") == name), None)
    if basis is None:
        return None
    new_due = _due_from(proc, cal, inst, name, typed, basis, history)
    c = typed.with_(due=new_due)  # the due time moves; the clock's other keys stay as they were
    if typed.kind is ClockKind.SLA:
        spec = next(s for s in proc.spec.slas if s.name == name)
        c = stamp(cal, c.with_(**_next_step(proc, cal, spec, c)), sla_uses_calendar(c))
    else:
        spec_t = next(t for t in proc.spec.timers if t.name == name)
        c = stamp(cal, c.with_(next=new_due), timer_uses_calendar(proc, spec_t))
    return None if c == typed else c


def _due_from(proc: CompiledProcedure, cal: WorkCalendar, inst: Instance, name: str, clock: Clock,
              basis: Event, history: list[Event]) -> datetime:
    at = basis.occurred_at
    if clock.kind is ClockKind.SLA:
        spec = next(s for s in proc.spec.slas if s.name == name)
        if basis.type == SLA_STARTED:
            goal = parse_duration(clock.goal, proc.spec.units)  # type: ignore[arg-type]  # an SLA clock has its goal
            return goal.add_to(at, cal, spec.workday_mode or "end_of_day")
        if basis.type == SLA_RESUMED:
            paused = next(e for e in reversed(history[:history.index(basis)])
                          if e.type == SLA_PAUSED and e.data.get("name") == name)
            rest = timedelta(seconds=clock_of_payload(paused.data["clock"]).paused_remaining)  # type: ignore[arg-type]  # a paused SLA clock has its remaining time
            return at + rest if clock.goal_kind == "wall" else cal.add_working_time(at, rest)
        return clock.due  # type: ignore[return-value]  # SlaReset: the due date is data
    spec_t = next(t for t in proc.spec.timers if t.name == name)
    if basis.type == TIMER_FIRED:  # a recurring timer: the occurrence after the last one fired
        schedule = parse_schedule(spec_t.schedule, proc.spec.units)  # type: ignore[arg-type]  # a timer that fired again is a scheduled one
        return schedule.next_after(datetime.fromisoformat(basis.data["due"]), cal,
                                   anchor=clock.started_at)
    first = first_fire(proc, cal, spec_t, inst, at)
    return first if first is not None else clock.due  # type: ignore[return-value]  # a timer with no first firing keeps its due time
