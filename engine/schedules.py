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
    every friday at 16:00               {every: friday, at: "16:00"}
    every monday and thursday at 10:00 [on workdays]   (on workdays: a holiday is skipped)
    weekly on the last workday at 16:00 {last_workday_of: week, at: "16:00"}
    monthly on the last workday at 17:00  {last_workday_of: month, at: "17:00"}
    cron 0 9 * * 1-5 [on workdays]      {cron: "0 9 * * 1-5", on_workdays: true}

Times of day are local to the calendar's zone; ``at`` defaults to 00:00 for monthly rules.
Days 29-31 must say what happens in shorter months. ``every <duration>`` fires at
``anchor + k * step`` (k >= 1); pass the time the timer was armed as ``anchor`` so a late
scheduler does not drift. Invalid specs raise ValueError naming what is wrong.
"""
from __future__ import annotations

import difflib
import re
from calendar import monthrange
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal, Protocol

from engine.calendar import WorkCalendar, month_day_or_last, parse_clock
from engine.durations import Duration, parse_duration

_FORMS = (
    "every <duration> | every workday at HH:MM | every day at HH:MM | every <weekday>[ and <weekday>] at HH:MM "
    "[on workdays] | weekly on the last workday at HH:MM | monthly on day N [or last day] [at HH:MM] | "
    "monthly on the last day [at HH:MM] | monthly on the last workday at HH:MM | cron <expression> [on workdays]"
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Schedule(Protocol):
    @property
    def text(self) -> str:
        """The schedule as the procedure wrote it (for messages)."""
        ...

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
        step: timedelta = self.step.amount  # type: ignore[assignment]  # kind tags amount: a timedelta for wall and working
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
    """A five-field cron expression, evaluated by croniter in the calendar's zone; with
    ``workdays_only``, occurrences on a day off are skipped (cron knows no holidays)."""

    expression: str
    text: str
    workdays_only: bool = False

    @property
    def uses_calendar(self) -> bool:
        return self.workdays_only

    def next_after(self, t: datetime, calendar: WorkCalendar, anchor: datetime | None = None) -> datetime:
        from croniter import croniter

        times = croniter(self.expression, _local(t, calendar))
        for _ in range(100_000):
            following = times.get_next(datetime).astimezone(calendar.zone)
            if not self.workdays_only or calendar.is_workday(following.date()):
                return following
        raise ValueError(f"schedule {self.text!r} finds no occurrence on a working day")


@dataclass(frozen=True)
class WeeklyOn:
    """Given weekdays at a local time; ``workdays_only`` skips those that are days off.

    "Every Friday" in an office means a Friday the office works: a weekly meeting on a
    National Day Friday does not happen (use ``weekly on the last workday`` to move it).
    """

    weekdays: frozenset[int]
    at: time
    workdays_only: bool
    text: str

    @property
    def uses_calendar(self) -> bool:
        return self.workdays_only

    def next_after(self, t: datetime, calendar: WorkCalendar, anchor: datetime | None = None) -> datetime:
        local = _local(t, calendar)
        day = local.date()
        for _ in range(7 * 60):  # a weekday that is always a holiday would be a broken calendar
            when = datetime.combine(day, self.at, tzinfo=calendar.zone)
            if day.weekday() in self.weekdays and when > local and (
                    not self.workdays_only or calendar.is_workday(day)):
                return when
            day += timedelta(days=1)
        raise ValueError(f"schedule {self.text!r} finds no working day on its weekdays within 60 weeks")


@dataclass(frozen=True)
class LastWorkdayOf:
    """The last workday of each week (Monday-Sunday) or month, at a local time: a weekly
    summary (DUN-6) held on Friday, or on Thursday when Friday is a holiday, or on the
    make-up Sunday that ends a week."""

    period: Literal["week", "month"]
    at: time
    text: str
    uses_calendar = True

    def _last_in(self, day: date, calendar: WorkCalendar) -> date | None:
        if self.period == "week":
            first, last = day - timedelta(days=day.weekday()), day + timedelta(days=6 - day.weekday())
        else:
            first, last = day.replace(day=1), day.replace(day=monthrange(day.year, day.month)[1])
        d = last
        while d >= first:
            if calendar.is_workday(d):
                return d
            d -= timedelta(days=1)
        return None  # a week (or month) with no workday at all: nothing that period

    def next_after(self, t: datetime, calendar: WorkCalendar, anchor: datetime | None = None) -> datetime:
        local = _local(t, calendar)
        day = local.date()
        for _ in range(120):
            last = self._last_in(day, calendar)
            if last is not None and datetime.combine(last, self.at, tzinfo=calendar.zone) > local:
                return datetime.combine(last, self.at, tzinfo=calendar.zone)
            day = (day + timedelta(days=7 - day.weekday()) if self.period == "week"
                   else (day.replace(day=1) + timedelta(days=32)).replace(day=1))
        raise ValueError(f"schedule {self.text!r} finds no working day within 120 periods")


def parse_schedule(spec: str | Mapping[str, object], units: Mapping[str, str] | None = None) -> Schedule:
    """Read a schedule from procedure text or a YAML mapping (forms in the module docstring)."""
    if isinstance(spec, str):
        return _from_text(spec, units)
    if isinstance(spec, Mapping):
        return _from_mapping(spec, units)
    raise ValueError(f"a schedule must be text or a mapping, not {spec!r}; accepted: {_FORMS}")


_DAILY = re.compile(r"(?:every (workday|working day|day)|daily) at (\S+)")
_WEEKDAY = "|".join(WEEKDAYS)
_WEEKLY = re.compile(rf"every ((?:{_WEEKDAY})(?:(?:,| and|, and) (?:{_WEEKDAY}))*) at (\S+)( on workdays)?")
_LAST_WORKDAY = re.compile(r"(weekly|monthly) on the last (?:workday|working day) at (\S+)")
_ON_WORKDAYS = " on workdays"
_MONTHLY = re.compile(
    r"monthly on (?:the )?(?:day (\d+)(,? or (?:the )?last day(?: of (?:a|the) shorter month)?)?|(last day))"
    r"(?: at (\S+))?"
)


def _from_text(spec: str, units: Mapping[str, str] | None) -> Schedule:
    text = " ".join(spec.lower().split())
    if match := _DAILY.fullmatch(text):
        return DailyAt(_at(match.group(2), spec), match.group(1) in ("workday", "working day"), spec)
    if match := _WEEKLY.fullmatch(text):
        days = frozenset(WEEKDAYS.index(d) for d in re.findall(_WEEKDAY, match.group(1)))
        return WeeklyOn(days, _at(match.group(2), spec), bool(match.group(3)), spec)
    if match := _LAST_WORKDAY.fullmatch(text):
        return LastWorkdayOf("week" if match.group(1) == "weekly" else "month", _at(match.group(2), spec), spec)
    if match := _MONTHLY.fullmatch(text):
        day, or_last, last, at = match.groups()
        if last:
            return _monthly("last", None, at, spec)
        return _monthly(int(day), "last" if or_last else None, at, spec)
    if text.startswith("cron "):
        expression = " ".join(spec.split())[5:]
        on_workdays = expression.lower().endswith(_ON_WORKDAYS)
        return _cron(expression[:-len(_ON_WORKDAYS)] if on_workdays else expression, spec, on_workdays)
    if text.startswith("every ") and " at " not in text:
        return _every(text[6:], spec, units)
    word = text.split()[1] if text.startswith("every ") and len(text.split()) > 1 else ""
    close = difflib.get_close_matches(word, WEEKDAYS + ("workday", "day"), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close and close[0] != word else ""
    raise ValueError(f"cannot read schedule {spec!r}{hint}; accepted: {_FORMS}")


def _from_mapping(spec: Mapping[str, object], units: Mapping[str, str] | None) -> Schedule:
    keys = set(spec)
    text = ", ".join(f"{k}: {v}" for k, v in spec.items())
    for allowed in ({"every", "at", "on_workdays"}, {"day", "shorter_month", "at"}, {"cron", "on_workdays"},
                    {"last_workday_of", "at"}):
        if keys & allowed and keys <= allowed:
            break
    else:
        raise ValueError(f"schedule keys {sorted(map(str, keys))} do not fit one form; accepted: "
                         "{every[, at][, on_workdays]}, {day[, shorter_month][, at]}, {cron[, on_workdays]}, "
                         "{last_workday_of, at}")
    on_workdays = spec.get("on_workdays", False)
    if not isinstance(on_workdays, bool):
        raise ValueError(f"schedule {text!r}: on_workdays must be true or false")
    if "cron" in spec:
        return _cron(str(spec["cron"]), text, on_workdays)
    if "last_workday_of" in spec:
        if spec["last_workday_of"] not in ("week", "month") or "at" not in spec:
            raise ValueError(f"schedule {text!r}: write last_workday_of: week or month, with at: \"HH:MM\"")
        return LastWorkdayOf(spec["last_workday_of"], _at(spec["at"], text), text)
    if "day" in spec:
        return _monthly(spec["day"], spec.get("shorter_month"), spec.get("at"), text)
    every = " ".join(str(spec["every"]).lower().split())
    days = re.findall(_WEEKDAY, every)
    if days and re.fullmatch(rf"(?:{_WEEKDAY})(?:(?:,| and|, and) (?:{_WEEKDAY}))*", every):
        if "at" not in spec:
            raise ValueError(f"schedule {text!r}: every {every} needs at: \"HH:MM\"")
        return WeeklyOn(frozenset(WEEKDAYS.index(d) for d in days), _at(spec["at"], text), on_workdays, text)
    if on_workdays:
        raise ValueError(f"schedule {text!r}: on_workdays goes with weekdays or cron (every workday already is)")
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
    return MonthlyOn(day, shorter or "last", clock, spec)


def _cron(expression: str, spec: str, on_workdays: bool = False) -> Cron:
    try:
        from croniter import croniter
    except ImportError:  # pragma: no cover - croniter is a dependency
        raise ValueError(f"schedule {spec!r}: cron schedules need the croniter package") from None
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValueError(f"schedule {spec!r}: {expression!r} is not a five-field cron expression")
    return Cron(expression, spec, on_workdays)
