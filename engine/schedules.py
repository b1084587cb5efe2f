"""Recurring timers: "when does this fire next, after t?" - pure rules, no I/O.

Why not cron for everything: the procedures say things cron cannot - "every workday at
10:00" must follow the China working calendar with its make-up weekends (DUN-5/DUN-6), and
"on the 30th, or the last day of a shorter month" (DUN-10) must fire in February, where
cron's ``0 0 30 * *`` silently skips the month. Cron (croniter) remains for anything else.

Accepted forms (text is case-insensitive; the mapping form is the same in YAML)::

    every 15 minutes                    {every: 15 minutes}          wall clock, from an anchor
    every 2 working hours               {every: 2 working hours}     working time, from an anchor
    every workday at 10:00              {every: workday, at: "10:00"}
    every day at 08:30                  {every: day, at: "08:30"}
    monthly on day 16 [at 09:00]        {day: 16, at: "09:00"}
    monthly on day 30 or last day       {day: 30, shorter_month: last}
                                        {day: 31, shorter_month: skip}   (cron's behaviour)
    monthly on the last day             {day: last}
    cron 0 9 * * 1-5                    {cron: "0 9 * * 1-5"}

Times of day are local to the calendar's zone; ``at`` defaults to 00:00 for monthly rules.
Days 29-31 must say what happens in shorter months. ``every <duration>`` fires at
``anchor + k * step`` (k >= 1); pass the time the timer was armed as ``anchor`` so a late
scheduler does not drift. Invalid specs raise ValueError naming what is wrong.
"""
from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal, Protocol

from engine.calendar import WorkCalendar, month_day_or_last, parse_clock
from engine.durations import Duration, parse_duration

_FORMS = (
    "every <duration> | every workday at HH:MM | every day at HH:MM | "
    "monthly on day N [or last day] [at HH:MM] | monthly on the last day [at HH:MM] | cron <expression>"
)


class Schedule(Protocol):
    text: str

    @property
    def uses_calendar(self) -> bool:
        """Whether its occurrences depend on the working calendar (then they can be provisional)."""
        ...

    def next_after(self, t: datetime, calendar: WorkCalendar, anchor: datetime | None = None) -> datetime:
        """The first occurrence strictly after ``t``, in the calendar's zone."""
        ...


def _local(t: datetime, calendar: WorkCalendar) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t} has no time zone; schedules take timezone-aware datetimes")
    return t.astimezone(calendar.zone)


@dataclass(frozen=True)
class Every:
    """Every ``step`` (wall clock or working time) after the anchor."""

    step: Duration
    text: str

    @property
    def uses_calendar(self) -> bool:
        return self.step.kind != "wall"

    def next_after(self, t: datetime, calendar: WorkCalendar, anchor: datetime | None = None) -> datetime:
        t = _local(t, calendar)
        anchor = _local(anchor, calendar) if anchor is not None else t
        step: timedelta = self.step.amount  # type: ignore[assignment]
        if self.step.kind == "working":
            elapsed = calendar.working_time_between(anchor, t) if t >= anchor else timedelta(0)
            return calendar.add_working_time(anchor, (elapsed // step + 1) * step)
        start = anchor.astimezone(timezone.utc)
        elapsed = max(t.astimezone(timezone.utc) - start, timedelta(0))
        return (start + (elapsed // step + 1) * step).astimezone(calendar.zone)


@dataclass(frozen=True)
class DailyAt:
    """Every day (or every workday of the calendar) at a local time."""

    at: time
    workdays_only: bool
    text: str

    @property
    def uses_calendar(self) -> bool:
        return self.workdays_only

    def next_after(self, t: datetime, calendar: WorkCalendar, anchor: datetime | None = None) -> datetime:
        local = _local(t, calendar)
        day = local.date()
        if self._fires_on(day, calendar) and self._on(day, calendar) > local:
            return self._on(day, calendar)
        day = calendar.next_workday(day) if self.workdays_only else day + timedelta(days=1)
        return self._on(day, calendar)

    def _fires_on(self, day: date, calendar: WorkCalendar) -> bool:
        return calendar.is_workday(day) if self.workdays_only else True

    def _on(self, day: date, calendar: WorkCalendar) -> datetime:
        return datetime.combine(day, self.at, tzinfo=calendar.zone)


@dataclass(frozen=True)
class MonthlyOn:
    """A day of every month; ``day=None`` is the last day. Shorter months: ``last`` or ``skip``."""

    day: int | None
    shorter_month: Literal["last", "skip"]
    at: time
    text: str
    uses_calendar = False

    def date_in(self, year: int, month: int) -> date | None:
        """The firing date in that month, or None when the month is skipped."""
        if self.day is None:
            return date(year, month, monthrange(year, month)[1])
        if self.shorter_month == "skip" and self.day > monthrange(year, month)[1]:
            return None
        return month_day_or_last(year, month, self.day)

    def next_after(self, t: datetime, calendar: WorkCalendar, anchor: datetime | None = None) -> datetime:
        local = _local(t, calendar)
        year, month = local.year, local.month
        for _ in range(24):
            day = self.date_in(year, month)
            if day is not None and datetime.combine(day, self.at, tzinfo=calendar.zone) > local:
                return datetime.combine(day, self.at, tzinfo=calendar.zone)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        raise AssertionError("unreachable: every day 1-31 occurs within 24 months")


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression, evaluated by croniter in the calendar's zone."""

    expression: str
    text: str
    uses_calendar = False

    def next_after(self, t: datetime, calendar: WorkCalendar, anchor: datetime | None = None) -> datetime:
        from croniter import croniter

        following = croniter(self.expression, _local(t, calendar)).get_next(datetime)
        return following.astimezone(calendar.zone)


def parse_schedule(spec: str | Mapping[str, object], units: Mapping[str, str] | None = None) -> Schedule:
    """Read a schedule from procedure text or a YAML mapping (forms in the module docstring)."""
    if isinstance(spec, str):
        return _from_text(spec, units)
    if isinstance(spec, Mapping):
        return _from_mapping(spec, units)
    raise ValueError(f"a schedule must be text or a mapping, not {spec!r}; accepted: {_FORMS}")


_DAILY = re.compile(r"(?:every (workday|working day|day)|daily) at (\S+)")
_MONTHLY = re.compile(
    r"monthly on (?:the )?(?:day (\d+)(,? or (?:the )?last day(?: of (?:a|the) shorter month)?)?|(last day))"
    r"(?: at (\S+))?"
)


def _from_text(spec: str, units: Mapping[str, str] | None) -> Schedule:
    text = " ".join(spec.lower().split())
    if match := _DAILY.fullmatch(text):
        return DailyAt(_at(match.group(2), spec), match.group(1) in ("workday", "working day"), spec)
    if match := _MONTHLY.fullmatch(text):
        day, or_last, last, at = match.groups()
        if last:
            return _monthly("last", None, at, spec)
        return _monthly(int(day), "last" if or_last else None, at, spec)
    if text.startswith("cron "):
        return _cron(spec.strip()[5:].strip(), spec)
    if text.startswith("every "):
        return _every(text[6:], spec, units)
    raise ValueError(f"cannot read schedule {spec!r}; accepted: {_FORMS}")


def _from_mapping(spec: Mapping[str, object], units: Mapping[str, str] | None) -> Schedule:
    keys = set(spec)
    text = ", ".join(f"{k}: {v}" for k, v in spec.items())
    for allowed in ({"every", "at"}, {"day", "shorter_month", "at"}, {"cron"}):
        if keys & allowed and keys <= allowed:
            break
    else:
        raise ValueError(f"schedule keys {sorted(map(str, keys))} do not fit one form; accepted: "
                         "{every[, at]}, {day[, shorter_month][, at]}, {cron}")
    if "cron" in spec:
        return _cron(str(spec["cron"]), text)
    if "day" in spec:
        return _monthly(spec["day"], spec.get("shorter_month"), spec.get("at"), text)
    every = " ".join(str(spec["every"]).lower().split())
    if every in ("workday", "working day", "day"):
        if "at" not in spec:
            raise ValueError(f"schedule {text!r}: every {every} needs at: \"HH:MM\"")
        return DailyAt(_at(spec["at"], text), every != "day", text)
    if "at" in spec:
        raise ValueError(f"schedule {text!r}: at goes with every workday / every day, not every <duration>")
    return _every(every, text, units)


def _at(raw: object, spec: object) -> time:
    try:
        return parse_clock(raw)
    except ValueError as exc:
        raise ValueError(f"schedule {spec!r}: {exc}") from None


def _every(duration: str, spec: str, units: Mapping[str, str] | None) -> Every:
    if duration in ("workday", "working day", "day"):
        raise ValueError(f"schedule {spec!r}: say at what time, e.g. every {duration} at 10:00")
    try:
        step = parse_duration(duration, units)
    except ValueError as exc:
        raise ValueError(f"schedule {spec!r}: {exc}") from None
    if step.kind == "workdays":
        raise ValueError(f"schedule {spec!r}: repeat on working days with 'every workday at HH:MM'")
    if not step.amount:
        raise ValueError(f"schedule {spec!r}: the interval must be longer than zero")
    return Every(step, spec)


def _monthly(day: object, shorter: object, at: object, spec: str) -> MonthlyOn:
    clock = _at(at, spec) if at is not None else time(0)
    if day == "last":
        return MonthlyOn(None, "last", clock, spec)
    if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
        raise ValueError(f"schedule {spec!r}: day must be 1-31 or last, not {day!r}")
    if shorter not in (None, "last", "skip"):
        raise ValueError(f"schedule {spec!r}: shorter_month must be last or skip, not {shorter!r}")
    if day > 28 and shorter is None:
        raise ValueError(
            f"schedule {spec!r}: day {day} is missing in shorter months; say 'monthly on day {day} or last day' "
            "(mapping: shorter_month: last) or, to skip those months, shorter_month: skip"
        )
    return MonthlyOn(day, shorter or "last", clock, spec)  # type: ignore[arg-type]


def _cron(expression: str, spec: str) -> Cron:
    try:
        from croniter import croniter
    except ImportError:  # pragma: no cover - croniter is a dependency
        raise ValueError(f"schedule {spec!r}: cron schedules need the croniter package") from None
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValueError(f"schedule {spec!r}: {expression!r} is not a five-field cron expression")
    return Cron(expression, spec)
