"""SLA clocks and timers: when they start, pause, stop, warn, breach and fire.

Pure, like the rest of ``core``: the caller passes the calendar and the time. A clock's
whole state lives in ``Instance.clocks[name]``, a typed :class:`engine.codec.Clock`, and
every change to it is an event carrying the new state in its stored form (the codec's
``to_stored``; folded back with ``from_stored``), so replay folds clocks exactly like data
and every hash stays what it was. The durable ``timers`` table is a projection of the
clocks indexed by ``next`` — the next moment the sweep must look at the clock (a warning
threshold, the breach, or a timer's firing).

Judged on ``occurred_at``: a command handled at time T first fires every clock of the
instance that came due before T (:func:`due_clocks`), so an answer recorded after the
third ring is a breach even when a call record is imported an hour later (PHN-6).

Clock fields: ``kind`` (sla|timer|quota), ``status`` (open, warned, met, breached,
cancelled for SLAs; open, fired, cancelled for timers; open, ended for quotas),
``running``, ``due``, ``next`` (aware datetimes), ``next_kind`` (a
:class:`engine.codec.ClockStep`: warn <pct> | breach | escalate <rung> | fire | judge),
``started_at``, ``ended_at``, ``goal``, ``warned`` (thresholds passed),
``paused_remaining`` (seconds, while paused), ``breached_at``, ``assignee``, ``fired``
(count), and ``provisional`` (the provisional calendar years its due or next step was
computed on; absent when none was).
"""
from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any, Iterable, Optional

from engine.calendar import WorkCalendar
from engine.codec import (Clock, ClockKind, ClockStatus, ClockStep, StepKind, clock_of_payload, clock_payload,
                          instant_text)
from engine.core import evolve as ev
from engine.core import model as m
from engine.core.model import Event, EventKind, Instance
from engine.core.due_times import first_fire, quota_period, signed_duration
from engine.core.parallel import BRANCH_ACTION_TAKEN, BRANCHES_FORKED, BRANCHES_JOINED
from engine.core.parallel import branch_closed as _branch_closed
from engine.core.parallel import clock_owner as _assignee
from engine.core.parallel import states_here as _here
from engine.durations import Duration, parse_duration
from engine.schedules import parse_schedule
from engine.spec.expr import EvalError
from engine.spec.library import CompiledProcedure
from engine.spec.models import QuotaSpec, SlaSpec, TimerSpec

_K = EventKind
SLA_STARTED, SLA_WARNED, SLA_BREACHED = _K.SLA_STARTED, _K.SLA_WARNED, _K.SLA_BREACHED
SLA_STOPPED, SLA_PAUSED, SLA_RESUMED = _K.SLA_STOPPED, _K.SLA_PAUSED, _K.SLA_RESUMED
SLA_RESET, SLA_CANCELLED, CLOCK_REPAIRED = _K.SLA_RESET, _K.SLA_CANCELLED, _K.CLOCK_REPAIRED
TIMER_ARMED, TIMER_FIRED, TIMER_CANCELLED = _K.TIMER_ARMED, _K.TIMER_FIRED, _K.TIMER_CANCELLED
SLA_ESCALATED, SLA_ACKNOWLEDGED = _K.SLA_ESCALATED, _K.SLA_ACKNOWLEDGED
QUOTA_STARTED, QUOTA_COUNTED, QUOTA_JUDGED, QUOTA_ENDED = _K.QUOTA_STARTED, _K.QUOTA_COUNTED, _K.QUOTA_JUDGED, _K.QUOTA_ENDED
CLOCK_EVENTS = (SLA_STARTED, SLA_WARNED, SLA_BREACHED, SLA_STOPPED, SLA_PAUSED, SLA_RESUMED, SLA_RESET,
                SLA_CANCELLED, TIMER_ARMED, TIMER_FIRED, TIMER_CANCELLED, CLOCK_REPAIRED,
                QUOTA_STARTED, QUOTA_COUNTED, QUOTA_JUDGED, QUOTA_ENDED, SLA_ESCALATED, SLA_ACKNOWLEDGED)
RUNNING_SLA = (ClockStatus.OPEN, ClockStatus.WARNED, ClockStatus.BREACHED)
_OPEN, _BREACHED, _CANCELLED = ClockStatus.OPEN, ClockStatus.BREACHED, ClockStatus.CANCELLED
_FIRE, _JUDGE, _BREACH = ClockStep.of(StepKind.FIRE), ClockStep.of(StepKind.JUDGE), ClockStep.of(StepKind.BREACH)
_NO_STEP: dict[str, Any] = {"next": None, "next_kind": None}


def _fold_clock(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    """A clock event's stored clock, typed once as it is folded (the payload stays as hashed)."""
    return inst.with_(clocks={**inst.clocks, event.data["name"]: clock_of_payload(event.data["clock"])})


for _t in CLOCK_EVENTS:
    ev.register(_t, _fold_clock)


def iso(t: datetime) -> str:
    """An instant as event payloads carry it: the text the codec stores clock times as."""
    return instant_text(t)


def clock_event(type_: str, name: str, clock: Clock, at: datetime, **extra: Any) -> Event:
    """The event carrying a clock's new state, in its stored form (what is hashed)."""
    return Event(type_, "system", None, at, {"name": name, "clock": clock_payload(clock), **extra})


def stamp(cal: WorkCalendar, clock: Clock, uses_calendar: bool, memo: Optional[dict[Any, Any]] = None) -> Clock:
    """Flag ``clock`` with the provisional years its times were computed on (engine.statutory).

    The window is the clock's start to its due time or next step, whichever is later: a
    working-time deadline walks every day in between. A clock on wall-clock time never
    depends on the calendar. Non-provisional clocks carry no key at all, so their events
    (and hashes) are what they were before provisional years existed.
    """
    ends = [t for t in (clock.due, clock.next) if t]
    if not uses_calendar or not ends or clock.started_at is None:  # (a clock with a deadline has started)
        years: list[int] = []
    elif memo is None:
        years = cal.provisional_years(clock.started_at, max(ends))
    else:  # a batch's: one answer per window
        window = (clock.started_at, max(ends))
        years = _remember(memo, ("provisional", *window), lambda: cal.provisional_years(*window))
    return clock.with_(provisional=tuple(years)) if years else clock.without("provisional")


_TIMER_USES_CALENDAR: dict[tuple[str, str, str], bool] = {}


def timer_uses_calendar(proc: CompiledProcedure, spec: TimerSpec) -> bool:
    """Whether a timer's firing times depend on the working calendar (per version, remembered)."""
    key = (proc.id, proc.version, spec.name)
    known = _TIMER_USES_CALENDAR.get(key)
    if known is None:
        units = proc.spec.units
        if spec.after is not None:
            known = parse_duration(spec.after, units).kind != "wall"
        elif spec.at is not None:
            known = signed_duration(spec.at.offset, units)[1].kind != "wall"
        else:
            known = parse_schedule(spec.schedule, units).uses_calendar  # type: ignore[arg-type]  # neither after nor at: the model requires a schedule
        _TIMER_USES_CALENDAR[key] = known
    return known


def sla_uses_calendar(clock: Clock) -> bool:
    return clock.goal_kind != "wall"


# ------------------------------------------------------------------ what a change means

def changes_of(before: Optional[Instance], events: Iterable[Event]) -> tuple[set[str], list[str], list[str]]:
    """(actions taken, states entered, states left) by a command's events, in order."""
    actions: set[str] = set()
    entered: list[str] = []
    left: list[str] = []
    for e in events:
        if e.type == m.INSTANCE_STARTED:
            entered.append(e.data["state"])
        elif e.type in (m.ACTION_TAKEN, BRANCH_ACTION_TAKEN):
            actions.add(e.data["action"])
            if e.data["to"] != e.data["from"]:
                left.append(e.data["from"])
                entered.append(e.data["to"])
        elif e.type == BRANCHES_FORKED:
            entered.extend(e.data["branches"].values())
        elif e.type == BRANCHES_JOINED:
            left.append(e.data["from"])
            left.extend(e.data["cancelled"].values())
            entered.append(e.data["to"])
    return actions, entered, left


def react(proc: CompiledProcedure, cal: WorkCalendar, before: Optional[Instance], after: Instance,
          events: list[Event], at: datetime, memo: Optional[dict[Any, Any]] = None) -> list[Event]:
    """Clock events caused by a command's events (start, stop, pause, resume, arm, cancel).

    ``memo`` is for a caller that starts many instances of one procedure at one instant
    (the bulk start keeps one dict per batch): a started SLA's due time and first step, and
    a timer's first firing when it is not read from the instance's data, depend only on the
    version, the clock and the instant, so the working calendar is asked once per batch.
    """
    actions, entered, left = changes_of(before, events)
    started = before is None or before.status == "starting"
    out: list[Event] = []
    inst = after
    for spec in proc.spec.slas:
        for e in _react_sla(proc, cal, spec, inst, actions, entered, started, at, memo):
            out.append(e)
            inst = ev.evolve(proc, inst, e)
    for tspec in proc.spec.timers:
        for e in _react_timer(proc, cal, tspec, inst, entered, left, started, at, memo):
            out.append(e)
            inst = ev.evolve(proc, inst, e)
    for qspec in proc.spec.quotas:
        for e in _react_quota(cal, qspec, inst, events, entered, left, started, at):
            out.append(e)
            inst = ev.evolve(proc, inst, e)
    return out


def _react_sla(proc: CompiledProcedure, cal: WorkCalendar, spec: SlaSpec, inst: Instance, actions: set[str],
               entered: list[str], started: bool, at: datetime, memo: Optional[dict[Any, Any]] = None) -> list[Event]:
    clock = inst.clocks.get(spec.name)
    if clock is None:
        begins = (spec.start_on in actions) if spec.start_on else (
            spec.start_in in entered if spec.start_in else started)
        return [_start_sla(proc, cal, spec, inst, at, memo)] if begins and inst.active else []
    if not clock.running:
        return []
    if spec.reset_on in actions and spec.reset_due_field:
        new_due = inst.data.get(spec.reset_due_field)
        if new_due and clock.status is not _BREACHED:
            c = clock.with_(due=datetime.fromisoformat(new_due), warned=(), status=_OPEN)
            c = stamp(cal, c.with_(**_next_step(proc, cal, spec, c)), sla_uses_calendar(c))
            return [clock_event(SLA_RESET, spec.name, c, at, due=iso(c.due))]  # type: ignore[arg-type]  # a reset clock has its due time
    if set(spec.stop_on) & actions or set(spec.stop_in) & set(entered) or _branch_closed(proc, inst, spec.start_in):
        return [_stop_sla(clock, spec.name, inst, at)]
    if not inst.active:
        c = clock.with_(running=False, next=None, next_kind=None, ended_at=at,
                        status=_BREACHED if clock.status is _BREACHED else _CANCELLED)
        return [clock_event(SLA_CANCELLED, spec.name, c, at)]
    paused_now = bool(_here(inst) & set(spec.pause_in)) if spec.pause_in else False
    if paused_now and clock.paused_remaining is None:
        remaining = _remaining(cal, clock, at)
        c = clock.with_(paused_remaining=remaining.total_seconds(), next=None, next_kind=None)
        return [clock_event(SLA_PAUSED, spec.name, c, at)]
    if not paused_now and clock.paused_remaining is not None:
        rest = timedelta(seconds=clock.paused_remaining)
        due = at + rest if clock.goal_kind == "wall" else cal.add_working_time(at, rest)
        c = clock.with_(paused_remaining=None, due=due)
        c = stamp(cal, c.with_(**_next_step(proc, cal, spec, c)), sla_uses_calendar(c))
        return [clock_event(SLA_RESUMED, spec.name, c, at)]
    return []


def goal_of(proc: CompiledProcedure, spec: SlaSpec, inst: Instance, at: datetime,
            zone: Optional[tzinfo] = None) -> Duration:
    """The SLA's goal; goal cases see ``now`` in the site's zone (``date(now)`` is the local date)."""
    if isinstance(spec.goal, str):
        return parse_duration(spec.goal, proc.spec.units)
    from engine.core.decide import expression_context
    ctx = expression_context(proc, inst, at.astimezone(zone) if zone else at, "system")
    for case in spec.goal:
        if case.when is None or proc.expr(case.when).evaluate(ctx):
            return parse_duration(case.goal, proc.spec.units)
    raise EvalError(f"no goal case of SLA {spec.name!r} applies")


def _start_sla(proc: CompiledProcedure, cal: WorkCalendar, spec: SlaSpec, inst: Instance, at: datetime,
               memo: Optional[dict[Any, Any]] = None) -> Event:
    goal = goal_of(proc, spec, inst, at, cal.zone)

    def timing() -> tuple[datetime, dict[str, Any]]:  # the due time and first step: goal, calendar and instant only
        due = goal.add_to(at, cal, spec.workday_mode or "end_of_day")
        return due, _step_after(cal, spec, at, due, goal.kind == "wall", (), False)

    due, step = _remember(memo, ("sla", proc.id, proc.version, spec.name, goal.text, goal.kind, at), timing)
    c = Clock.of(kind=ClockKind.SLA, status=_OPEN, running=True, started_at=at, due=due, goal=goal.text,
                 goal_kind=goal.kind, warned=(), paused_remaining=None, breached_at=None, ended_at=None,
                 assignee=_assignee(proc, inst, spec.start_in), **step)
    c = stamp(cal, c, goal.kind != "wall")
    return clock_event(SLA_STARTED, spec.name, c, at, due=iso(due))


def _remember(memo: Optional[dict[Any, Any]], key: tuple[Any, ...], compute: Any) -> Any:
    """``compute()``, once per key while the caller keeps ``memo`` (nothing kept without one)."""
    if memo is None:
        return compute()
    try:
        return memo[key]
    except KeyError:
        value = memo[key] = compute()
        return value


def _escalation_step(proc: CompiledProcedure, cal: WorkCalendar, spec: SlaSpec, clock: Clock,
                     rung: int) -> dict[str, Any]:
    """The next rung of the ladder, counted from the breach, or no next step when the
    ladder is done or was acknowledged."""
    if rung >= len(spec.escalate) or clock.acknowledged_at:
        return _NO_STEP
    after = parse_duration(spec.escalate[rung].after, proc.spec.units)
    when = after.add_to(clock.due, cal, spec.workday_mode or "end_of_day")  # type: ignore[arg-type]  # a breached SLA has its due time
    return {"next": when, "next_kind": ClockStep.of(StepKind.ESCALATE, rung)}


def acknowledged(clock: Clock, name: str, actor: str, at: datetime) -> Event:
    """An acknowledgement of an SLA's escalation: the ladder stops where it is."""
    c = clock.with_(acknowledged_at=at, acknowledged_by=actor)
    if clock.next_kind is not None and clock.next_kind.kind is StepKind.ESCALATE:
        c = c.with_(**_NO_STEP)
    return clock_event(SLA_ACKNOWLEDGED, name, c, at, by=actor)


def _stop_sla(clock: Clock, name: str, inst: Instance, at: datetime) -> Event:
    due = clock.due
    late = clock.status is _BREACHED or (due is not None and clock.paused_remaining is None and at > due)
    c = clock.with_(running=False, next=None, next_kind=None, ended_at=at, assignee=inst.assignee,
                    status=_BREACHED if late else ClockStatus.MET)
    if late and clock.breached_at is None:
        c = c.with_(breached_at=due)
    return clock_event(SLA_STOPPED, name, c, at, result=str(c.status))


def _remaining(cal: WorkCalendar, clock: Clock, at: datetime) -> timedelta:
    due: datetime = clock.due  # type: ignore[assignment]  # a running SLA has its due time
    if due <= at:
        return timedelta(0)
    return due - at if clock.goal_kind == "wall" else cal.working_time_between(at, due)


def _next_step(proc: CompiledProcedure, cal: WorkCalendar, spec: SlaSpec, clock: Clock,
               memo: Optional[dict[Any, Any]] = None) -> dict[str, Any]:
    """The next warning threshold not yet passed, else the breach: the clock's new
    ``next`` and ``next_kind`` (a dict to read, never to change). With a batch's ``memo``,
    worked out once for the clocks of one SLA started at one instant with one due time
    (cases started together: a bulk start, an import) at the same point of their ladder."""
    args = (clock.started_at, clock.due, clock.goal_kind == "wall", clock.warned, clock.status is _BREACHED)
    if memo is None:
        return _step_after(cal, spec, *args)  # type: ignore[arg-type]  # a started SLA has its start and due time
    return _remember(memo, ("sla-step", proc.id, proc.version, spec.name, *args),
                     lambda: _step_after(cal, spec, *args))  # type: ignore[arg-type]  # a started SLA has its start and due time


def _step_after(cal: WorkCalendar, spec: SlaSpec, start: datetime, due: datetime, wall: bool,
                warned: tuple[int, ...], breached: bool) -> dict[str, Any]:
    for pct in sorted(spec.warn_at):
        if pct in warned:
            continue
        if wall:
            t = start + (due - start) * pct / 100
        else:
            span = cal.working_time_between(start, due) if due > start else timedelta(0)
            t = cal.add_working_time(start, span * pct / 100)
        return {"next": t, "next_kind": ClockStep.of(StepKind.WARN, pct)}
    if breached:
        return _NO_STEP
    return {"next": due, "next_kind": _BREACH}


def _react_timer(proc: CompiledProcedure, cal: WorkCalendar, spec: TimerSpec, inst: Instance,
                 entered: list[str], left: list[str], started: bool, at: datetime,
                 memo: Optional[dict[Any, Any]] = None) -> list[Event]:
    clock = inst.clocks.get(spec.name)
    live = clock is not None and clock.status is _OPEN
    states = spec.states
    if states is None:
        arms, ends = inst.active and started, live and not inst.active
    else:  # armed on coming into the states from outside them, cancelled on going out of them
        inside = bool(_here(inst) & set(states))
        came_in = any(s in states for s in entered) and not (live and len(states) > 1)
        arms = inst.active and inside and came_in
        ends = live and (not inst.active or (not inside and any(s in states for s in left)))
    out: list[Event] = []
    if ends and not arms:
        c = clock.with_(status=_CANCELLED, next=None, next_kind=None, ended_at=at)  # type: ignore[union-attr]  # a live timer has its clock
        out.append(clock_event(TIMER_CANCELLED, spec.name, c, at))
    elif arms:
        if spec.at is None:  # after a duration or on a schedule: the same for every instance
            first = _remember(memo, ("timer", proc.id, proc.version, spec.name, at),
                              lambda: first_fire(proc, cal, spec, inst, at))
        else:
            first = first_fire(proc, cal, spec, inst, at)
        if first is not None:
            c = Clock.of(kind=ClockKind.TIMER, status=_OPEN, running=True, started_at=at, due=first, next=first,
                         next_kind=_FIRE, fired=_kept(clock, "fired"), ended_at=None)
            c = stamp(cal, c, timer_uses_calendar(proc, spec))
            out.append(clock_event(TIMER_ARMED, spec.name, c, at, due=iso(first)))
    return out


def _kept(clock: Optional[Clock], key: str) -> Any:
    """A count a clock started again keeps from its previous run (0 for a first run)."""
    return 0 if clock is None or key not in clock.keys else getattr(clock, key)


# ------------------------------------------------------------------ per-period quotas (REN-4)

def _react_quota(cal: WorkCalendar, spec: QuotaSpec, inst: Instance, events: list[Event], entered: list[str],
                 left: list[str], started: bool, at: datetime) -> list[Event]:
    clock = inst.clocks.get(spec.name)
    live = clock is not None and clock.status is _OPEN
    states = spec.states
    if states is None:
        arms, ends = inst.active and started, live and not inst.active
    else:
        inside = bool(_here(inst) & set(states))
        arms = inst.active and inside and any(s in states for s in entered) and not live
        ends = live and (not inst.active or (not inside and any(s in states for s in left)))
    if ends:
        c = clock.with_(status=ClockStatus.ENDED, running=False, next=None, next_kind=None,  # type: ignore[union-attr]  # a live quota has its clock
                        ended_at=at)
        return [clock_event(QUOTA_ENDED, spec.name, c, at)]
    if arms:
        start, end = quota_period(cal, spec.per, at, whole=True)
        c = Clock.of(kind=ClockKind.QUOTA, status=_OPEN, running=True, started_at=at, period_start=start, due=end,
                     next=end, next_kind=_JUDGE, count=0, required=spec.count, met=_kept(clock, "met"),
                     missed=_kept(clock, "missed"), ended_at=None)
        c = stamp(cal, c, spec.per == "workday")
        return [clock_event(QUOTA_STARTED, spec.name, c, at, due=iso(end))]
    if live:
        since: datetime = clock.period_start  # type: ignore[union-attr, assignment]  # a live quota has its clock and period
        counted = sum(1 for e in events if e.type == m.ACTION_TAKEN and e.data["action"] in spec.actions
                      and e.occurred_at >= since)
        if counted:
            c = clock.with_(count=clock.count + counted)  # type: ignore[union-attr, operator]  # a live quota has its clock and count
            return [clock_event(QUOTA_COUNTED, spec.name, c, at, count=c.count)]
    return []


def _judge_quota(cal: WorkCalendar, spec: QuotaSpec, clock: Clock, at: datetime) -> tuple[Event, bool]:
    """The period's verdict and the next period's clock: (QuotaJudged, met?)."""
    count, required = clock.count, clock.required
    met = count >= required  # type: ignore[operator]  # a quota clock has its count and required
    was_start, was_end = clock.period_start, clock.due
    start, end = quota_period(cal, spec.per, was_end, whole=True)  # type: ignore[arg-type]  # a quota clock's period has its end
    c = clock.with_(count=0, period_start=start, due=end, next=end,
                    met=clock.met + met, missed=clock.missed + (not met))  # type: ignore[operator]  # a quota clock has its met and missed
    c = stamp(cal, c, spec.per == "workday")
    event = clock_event(QUOTA_JUDGED, spec.name, c, at, period_start=iso(was_start), period_end=iso(was_end),  # type: ignore[arg-type]  # a quota clock's period has its start and end
                        count=count, required=required, result="met" if met else "missed")
    return event, met


# ------------------------------------------------------------------ firing

def due_clocks(inst: Instance, until: datetime, strictly_before: bool = False) -> list[str]:
    """Names of the clocks whose next step is due at or before ``until`` (strictly before,
    for a command at ``until``: an answer at the very due instant is still in time),
    earliest first."""
    due = []
    for n, c in inst.clocks.items():
        t = c.next
        if t is not None and (t < until or (t == until and not strictly_before)):
            due.append((t, n))
    return [n for _, n in sorted(due)]


def fire_events(proc: CompiledProcedure, cal: WorkCalendar, inst: Instance, name: str, now: datetime,
                memo: Optional[dict[Any, Any]] = None
                ) -> tuple[list[Event], Optional[TimerSpec | SlaSpec | QuotaSpec], datetime]:
    """The clock event of one due step, the spec whose effects must follow, and when it happened.

    ``now`` is when the engine fires it (for the recorded lateness). The step happens at its
    own due time (or at the instance's last event, if that is later), and a recurring timer
    fires once per occurrence: after downtime, a backlog is each step at its own time, in
    order, so a daily check is judged for every day missed and a condition such as
    ``date(now) < due_date`` is judged on the day the step was due. ``memo`` is a batch's
    (see ``_next_step``).
    """
    clock = inst.clocks[name]
    due: datetime = clock.next  # type: ignore[assignment]  # a due clock has its next step
    at = max(due, inst.last_occurred_at) if inst.last_occurred_at else due
    late = max((now - due).total_seconds(), 0.0)
    if clock.kind is ClockKind.SLA:
        return _fire_sla(proc, cal, inst, name, clock, at, late, memo)
    if clock.kind is ClockKind.QUOTA:
        qspec = next(q for q in proc.spec.quotas if q.name == name)
        event, _ = _judge_quota(cal, qspec, clock, at)
        return [event], qspec, at
    tspec = next(t for t in proc.spec.timers if t.name == name)
    fired = (clock.fired or 0) + 1
    if tspec.schedule:
        schedule = parse_schedule(tspec.schedule, proc.spec.units)
        nxt = schedule.next_after(due, cal, anchor=clock.started_at)
        c = stamp(cal, clock.with_(fired=fired, due=nxt, next=nxt, next_kind=_FIRE), schedule.uses_calendar)
    else:
        c = clock.with_(fired=fired, status=ClockStatus.FIRED, running=False, next=None, next_kind=None, ended_at=at)
    return [clock_event(TIMER_FIRED, name, c, at, due=iso(due), late_by_s=late, missed=0)], tspec, at


def _fire_sla(proc: CompiledProcedure, cal: WorkCalendar, inst: Instance, name: str, clock: Clock, at: datetime,
              late: float, memo: Optional[dict[Any, Any]] = None) -> tuple[list[Event], SlaSpec, datetime]:
    """An SLA's due step: a warning threshold, a rung of the escalation ladder, or the breach."""
    spec = next(s for s in proc.spec.slas if s.name == name)
    step: ClockStep = clock.next_kind  # type: ignore[assignment]  # a due SLA clock has its next step's kind
    if step.kind is StepKind.WARN and step.number is not None:
        pct = step.number
        warned = tuple(sorted(clock.warned + (pct,)))
        c = clock.with_(warned=warned, status=ClockStatus.WARNED) if clock.status is _OPEN else clock.with_(warned=warned)
        c = stamp(cal, c.with_(**_next_step(proc, cal, spec, c, memo)), sla_uses_calendar(c), memo)
        return [clock_event(SLA_WARNED, name, c, at, threshold=pct, late_by_s=late)], spec, at
    if step.kind is StepKind.ESCALATE and step.number is not None:
        rung = step.number  # the next rung counts from the same due time, acknowledgement and all
        c = clock.with_(escalated=rung + 1, **_escalation_step(proc, cal, spec, clock, rung + 1))
        return [clock_event(SLA_ESCALATED, name, c, at, rung=rung, late_by_s=late)], spec, at
    c = clock.with_(status=_BREACHED, breached_at=clock.due, assignee=inst.assignee,
                    **_escalation_step(proc, cal, spec, clock, 0))  # the ladder's first rung, or no next step
    return [clock_event(SLA_BREACHED, name, c, at, due=iso(clock.due), late_by_s=late)], spec, at  # type: ignore[arg-type]  # a breached SLA has its due time
