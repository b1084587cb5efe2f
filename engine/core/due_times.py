"""When a clock's steps fall: a timer's first firing and a quota's period, on the working calendar.

Calendar arithmetic only, with no clock state: ``engine.core.clocks`` (arming) and
``engine.core.clock_repair`` (re-arming after a calendar change) both ask it, so a timer
armed and a timer repaired get the same time.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from engine.calendar import WorkCalendar
from engine.durations import Duration, parse_duration
from engine.schedules import parse_schedule
from engine.spec.library import CompiledProcedure
from engine.core.model import Instance
from engine.spec.models import TimerSpec


def quota_period(cal: WorkCalendar, per: str, t: datetime, whole: bool) -> tuple[datetime, datetime]:
    """The period a quota judges that contains ``t`` or comes after it: (start, end).

    ``whole``: the first period that starts at or after ``t`` (a quota armed part-way
    through a period does not judge it). A workday's period is its working hours.
    """
    local = t.astimezone(cal.zone)
    day = local.date()
    for _ in range(400):
        if per == "week":
            monday = day - timedelta(days=day.weekday())
            start = datetime.combine(monday, datetime.min.time(), tzinfo=cal.zone)
            end = start + timedelta(days=7)
            step = 7 - day.weekday()
        elif per == "day":
            start = datetime.combine(day, datetime.min.time(), tzinfo=cal.zone)
            end = start + timedelta(days=1)
            step = 1
        else:
            spans = cal.day_periods(day)
            start, end, step = (spans[0][0], spans[-1][1], 1) if spans else (None, None, 1)  # type: ignore[assignment]  # start None only when end is too, and then unread
        if start is not None and local < end and (not whole or local <= start):
            return start, end
        day += timedelta(days=step)
    raise ValueError(f"no {per} period within 400 days after {t}; check the calendar file")


def signed_duration(text: str, units: dict[str, str]) -> tuple[int, Duration]:
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    return sign, parse_duration(text.lstrip("+-").strip(), units)


def first_fire(proc: CompiledProcedure, cal: WorkCalendar, spec: TimerSpec, inst: Instance,
               at: datetime) -> Optional[datetime]:
    units = proc.spec.units
    if spec.after is not None:
        return parse_duration(spec.after, units).add_to(at, cal, spec.workday_mode or "end_of_day")
    if spec.at is not None:
        raw = inst.data.get(spec.at.field)
        if not raw:
            return None
        base = datetime.fromisoformat(raw)
        if base.tzinfo is None:  # a date field: the start of that day in the site's zone, or at ``time``
            hh, mm = (int(x) for x in (spec.at.time or "00:00").split(":"))
            base = base.replace(hour=hh, minute=mm, tzinfo=cal.zone)
        sign, d = signed_duration(spec.at.offset, units)
        if d.kind == "wall":
            return base + sign * d.amount  # type: ignore[operator]  # kind tags amount: a timedelta for wall
        if sign < 0:
            return _subtract_working(cal, base, d)
        return d.add_to(base, cal, spec.workday_mode or "end_of_day")
    assert spec.schedule is not None
    return parse_schedule(spec.schedule, units).next_after(at, cal, anchor=at)


def _subtract_working(cal: WorkCalendar, base: datetime, d: Duration) -> datetime:
    """``base`` minus a working duration (e.g. "1 workday before the promised date")."""
    if d.kind == "workdays":
        day = base.astimezone(cal.zone).date()
        for _ in range(int(d.amount)):  # type: ignore[arg-type]  # kind tags amount: an int for workdays
            day = cal.previous_workday(day)
        local = base.astimezone(cal.zone)
        return local.replace(year=day.year, month=day.month, day=day.day)
    step = cal.working_time_between(base - timedelta(days=30), base) - d.amount  # type: ignore[operator]  # kind tags amount: a timedelta for working time
    return cal.add_working_time(base - timedelta(days=30), max(step, timedelta(0)))
