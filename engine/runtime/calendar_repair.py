"""``sop calendar repair``: move open deadlines after the working calendar changed.

Why: a deadline in a year no notice was known for was computed on the provisional
calendar (engine/statutory.py). When the site adds the year's State Council notice to its
calendar file, or a newer ``chinese-calendar`` knows it, or a known year is corrected,
open deadlines computed on the old answer are wrong. This recomputes every open clock
step from the event its due time was counted from (``clock_repair.repaired``) and records one
``ClockRepaired`` event per clock that changed, with the old due, the new due and why,
in the same transaction as the projection and the timers row, so replay and audit hold
and the sweep fires the step at its new time. Nothing is rewritten: met and breached
verdicts stay as they were judged.

The worker runs it when it starts (``repair_all``), so a calendar edited while it was
stopped takes effect before anything fires.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from engine.calendar import WorkCalendar
from engine.codec import Clock
from engine.core import clocks as clk
from engine.core.clock_repair import repaired
from engine.core.model import Decision, Event
from engine.errors import ProcedureDisabled
from engine.store import timers as timer_store

log = logging.getLogger("sop.calendar")


@dataclass(frozen=True)
class Repaired:
    instance_id: int
    name: str
    old_due: str
    new_due: str
    reason: str


def repair_all(engine: Any, now: Optional[datetime] = None) -> list[Repaired]:
    """Recompute every open clock step of every instance; what moved, in instance order."""
    now = now or engine.clock.now()
    with engine.read() as conn:
        ids = timer_store.instances_with_open_steps(conn)
    done: list[Repaired] = []
    for iid in ids:
        try:
            done += engine.repair_clocks(iid, now)
        except ProcedureDisabled as err:  # repaired once its procedure is fixed
            log.warning("instance %s not repaired: %s", iid, err)
    if done:
        log.warning("working calendar changed: %d open deadlines recomputed", len(done))
    return done


def repair_decision(proc: Any, cal: WorkCalendar, inst: Any, history: list[Event],
                    now: datetime) -> Decision:
    """The ``ClockRepaired`` events for one instance (none when nothing moved).

    They happen when the first of the wrong steps would have: now, or the old next step if
    that has already passed without firing (a stopped worker), never before the instance's
    last event. The sweep then fires each step at its corrected time.
    """
    changes = [(name, clock, new) for name, clock in sorted(inst.clocks.items())
               if (new := repaired(proc, cal, inst, name, history)) is not None]
    decision = Decision()
    if not changes:
        return decision
    first_wrong = min(clock.next for _, clock, _ in changes)
    at = min(now, first_wrong)
    if inst.last_occurred_at is not None:
        at = max(at, inst.last_occurred_at)
    for name, clock, new in changes:
        assert new.due is not None, "a repaired clock has a due time (it moved it)"
        decision.events.append(Event(clk.CLOCK_REPAIRED, "system", None, at, {
            "name": name, "clock": new.to_stored(), "old_due": clk.iso(clock.due), "new_due": clk.iso(new.due),
            "reason": _reason(cal, clock, new)}))
    return decision


def _reason(cal: WorkCalendar, old: Clock, new: Clock) -> str:
    """Why a clock moved: the years its window spans, as the calendar now describes them."""
    start = old.started_at.astimezone(cal.zone)  # type: ignore[union-attr]  # a repaired clock has started and has due times
    end = max(old.due, new.due).astimezone(cal.zone)  # type: ignore[type-var, union-attr]  # a repaired clock has started and has due times
    years = "; ".join(f"{y}: {cal.describe_year(y)}" for y in range(start.year, end.year + 1))
    was = f"was computed on provisional {', '.join(map(str, old.provisional))}; " if old.provisional else ""
    return f"working calendar changed ({was}now {years})"
