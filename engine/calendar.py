"""Working days and working hours: the clock that SLA deadlines run on.

Why this module exists: the procedures measure deadlines in *working* time on the
mainland-China calendar ("reply within 1 workday", rule CMP-3). Public holidays move
weekends around there (调休: Sunday 2025-09-28 was a workday, Wednesday 2025-10-08 was
not), so weekday arithmetic is wrong several times a year. Working days therefore come
from the maintained ``chinese_calendar`` package, corrected by per-site overrides, and
working hours from the site's periods (default 09:00-12:00 and 13:30-18:00, 7.5 h).

The package only knows the years whose State Council notice it shipped; next year's
notice appears each November. The office never stops for that: a year that neither the
package nor the site's calendar file knows gets a *provisional* calendar built from the
statutory rules (:mod:`engine.statutory`), and every deadline computed on one of its days
is flagged ``provisional`` until the site adds the year (``years:`` in its calendar file;
format in docs/working-time.md and :func:`load_calendar_file`) or a newer package knows
it, and ``sop calendar repair`` recomputes those deadlines.

Conventions:
- working time is a union of half-open periods ``[start, end)``: 12:00 is not inside;
- ``add_working_time`` returns the *earliest* instant at which the delta has elapsed, so
  a result landing on a period end stays there (17:55 + 5 min = 18:00 the same day) and
  a zero delta returns the start unchanged;
- differences between instants are taken in UTC, so zones with DST stay correct.
"""
from __future__ import annotations

from calendar import monthrange
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import TypedDict
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml

from engine import statutory
from engine.errors import CalendarError, Issue, ProcedureError
from engine.shipped import data_root

Period = tuple[time, time]
DEFAULT_ZONE = "Asia/Shanghai"
DEFAULT_PERIODS: tuple[tuple[str, str], ...] = (("09:00", "12:00"), ("13:30", "18:00"))
WORKDAY_MODES = ("end_of_day", "working_hours")
SHIPPED_FILE = data_root() / "org" / "calendar.yaml"

_UTC = timezone.utc
_MAX_IDLE_DAYS = 400  # no workday for longer than this means a broken calendar, not a holiday

# Dates on which chinese_calendar disagrees with the official notice (checked against the
# `holidays` package and the notice text). Site files still override these.
OFFICIAL_CORRECTIONS: dict[date, bool] = {
    # 国办发明电〔2005〕35号 (the 2006 notice): "12月31日（星期六）上班" - Saturday
    # 2005-12-31 was a make-up workday. chinese_calendar 1.11 has it as a day off.
    date(2005, 12, 31): True,
}


class YearSource(StrEnum):
    """Where the workdays of a year come from, most trusted first."""

    SITE = "site"                # a whole year defined in the site's calendar file
    PACKAGE = "package"          # chinese_calendar's copy of the State Council notice
    PROVISIONAL = "provisional"  # the statutory rules only (engine.statutory)


def _package_years() -> tuple[int, int]:
    """First and last year chinese_calendar has a State Council notice for."""
    known = [d.year for d in chinese_calendar.holidays] + [d.year for d in chinese_calendar.workdays]
    return min(known), max(known)


PACKAGE_YEARS = _package_years()


def parse_clock(text: object) -> time:
    """``"09:00"`` or ``"9:00"`` -> time. Anything else (also YAML's 540 for 9:00) -> ValueError."""
    if isinstance(text, time):
        return text
    if not isinstance(text, str):
        raise ValueError(
            f"a time of day must be a quoted string such as \"09:00\", not {text!r} "
            "(YAML reads an unquoted 9:00 as the number 540)"
        )
    hours, sep, minutes = text.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and len(hours) <= 2):
        raise ValueError(f"{text!r} is not a time of day; write HH:MM, e.g. \"13:30\"")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"{text!r} is not a time of day (hours 00-23, minutes 00-59)")
    return time(int(hours), int(minutes))


def normalise_periods(periods: Iterable[tuple[object, object]]) -> tuple[Period, ...]:
    """Check working periods: each start before its end, in order, not overlapping."""
    result = tuple((parse_clock(start), parse_clock(end)) for start, end in periods)
    if not result:
        raise ValueError("working hours need at least one period")
    for start, end in result:
        if start >= end:
            raise ValueError(f"working period {start:%H:%M}-{end:%H:%M} ends before it starts")
    for (_, end), (start, _) in zip(result, result[1:]):
        if start < end:
            raise ValueError(f"working periods must be in order and not overlap ({end:%H:%M} > {start:%H:%M})")
    return result


def month_day_or_last(year: int, month: int, day: int) -> date:
    """The given day of the month, or the month's last day if it is shorter (30 -> Feb 28)."""
    if not 1 <= day <= 31:
        raise ValueError(f"day of month must be 1-31, not {day}")
    return date(year, month, min(day, monthrange(year, month)[1]))


@dataclass(frozen=True)
class YearDefinition:
    """One year's holiday notice, for a year the package does not know (or to replace it).

    Inside a defined year, Monday-Friday are workdays except ``holidays``, and weekends are
    days off except ``workdays`` (make-up days, 调休). A notice may move days in the last
    December of the previous year, so those are accepted too.
    """

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    source: str = ""

    def problems(self, year: int) -> list[tuple[date, str]]:
        """(date, reason) for each date that cannot belong to ``year``'s notice."""
        found = [(d, f"{d} is listed both as a holiday and as a workday") for d in sorted(self.holidays & self.workdays)]
        for d in sorted(self.holidays | self.workdays):
            # A notice names dates of its year and, for New Year, of the previous December.
            if not (d.year == year or (d.year == year - 1 and d.month == 12)):
                found.append((d, f"{d} is outside {year} (allowed: {year}, or December {year - 1})"))
        return found


class YearMapping(TypedDict, total=False):
    """A year written as a mapping (the keys of :class:`YearDefinition`)."""

    holidays: Iterable[date]
    workdays: Iterable[date]
    source: str


class CalendarArgs(TypedDict, total=False):
    """What a calendar file gives :class:`WorkCalendar` (every key optional)."""

    zone: str
    periods: list[tuple[time, time]]
    extra_closed: set[date]
    extra_working: set[date]
    years: dict[int, YearDefinition]


def _as_year(year: int, spec: YearDefinition | YearMapping) -> YearDefinition:
    if isinstance(spec, YearDefinition):
        definition = spec
    else:
        definition = YearDefinition(
            holidays=frozenset(spec.get("holidays", ())),
            workdays=frozenset(spec.get("workdays", ())),
            source=str(spec.get("source", "")),
        )
    problems = definition.problems(year)
    if problems:
        raise ValueError(f"year {year}: " + "; ".join(reason for _, reason in problems))
    return definition


def _require_aware(t: datetime) -> None:
    if not isinstance(t, datetime):
        raise TypeError(f"expected a datetime, got {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t} has no time zone; the calendar only takes timezone-aware datetimes")


def _require_date(d: date) -> None:
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a date, got {type(d).__name__} (use t.astimezone(zone).date())")


def _between(a: datetime, b: datetime) -> timedelta:
    return b.astimezone(_UTC) - a.astimezone(_UTC)


class WorkCalendar:
    """Working days (China + site overrides) and working hours in one zone."""

    def __init__(
        self,
        zone: str = DEFAULT_ZONE,
        periods: Iterable[tuple[object, object]] = DEFAULT_PERIODS,
        extra_closed: Iterable[date] = (),
        extra_working: Iterable[date] = (),
        years: Mapping[int, YearDefinition | YearMapping] | None = None,
        source: str | None = None,
    ) -> None:
        self.zone = ZoneInfo(zone)
        self.periods = normalise_periods(periods)
        self.extra_closed = frozenset(extra_closed)
        self.extra_working = frozenset(extra_working)
        clash = sorted(self.extra_closed & self.extra_working)
        if clash:
            raise ValueError(f"dates both in extra_closed and extra_working: {', '.join(map(str, clash))}")
        self.years = {int(y): _as_year(int(y), spec) for y, spec in (years or {}).items()}
        self.source = source
        self._listed: dict[date, bool] = {}
        for year in sorted(self.years):
            self._listed.update(dict.fromkeys(self.years[year].holidays, False))
            self._listed.update(dict.fromkeys(self.years[year].workdays, True))
        self._cache: dict[date, bool] = {}
        self._periods_cache: dict[date, tuple[tuple[datetime, datetime], ...]] = {}

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> WorkCalendar:
        """Built-in defaults overridden by a calendar YAML file; errors -> ProcedureError."""
        return cls(**load_calendar_file(Path(path)), source=str(path))

    @classmethod
    def default(cls) -> WorkCalendar:
        """Built-in defaults plus the shipped ``org/calendar.yaml`` when it exists."""
        return cls.from_file(SHIPPED_FILE) if SHIPPED_FILE.exists() else cls()

    @classmethod
    def for_site(cls, calendar_file: str | Path | None, org_file: str | Path | None = None) -> WorkCalendar:
        """The site's calendar: the file given (``--calendar``/``SOP_CALENDAR``), else the
        ``calendar.yaml`` beside the org file, else the shipped one. The calendar belongs to
        the site, not to the installed package: a site's 2027 notice must survive upgrades."""
        if calendar_file is not None:
            return cls.from_file(calendar_file)
        beside = Path(org_file).with_name("calendar.yaml") if org_file is not None else None
        if beside is not None and beside.is_file():
            return cls.from_file(beside)
        return cls.default()

    # -- days --------------------------------------------------------------------------

    @property
    def day_length(self) -> timedelta:
        """Working time in one working day (7.5 h with the default periods)."""
        return sum((datetime.combine(date.min, e) - datetime.combine(date.min, s) for s, e in self.periods), timedelta())

    def covered_years(self) -> set[int]:
        """Years known from a notice (package years plus years defined in the site file)."""
        first, last = PACKAGE_YEARS
        return set(range(first, last + 1)) | set(self.years)

    def year_source(self, year: int) -> YearSource:
        if year in self.years:
            return YearSource.SITE
        first, last = PACKAGE_YEARS
        return YearSource.PACKAGE if first <= year <= last else YearSource.PROVISIONAL

    def is_provisional(self, year: int) -> bool:
        return self.year_source(year) is YearSource.PROVISIONAL

    def provisional_years(self, a: datetime, b: datetime) -> list[int]:
        """The provisional years among the local calendar years from ``a`` to ``b`` (either order)."""
        first, last = sorted((self._local(a).year, self._local(b).year))
        return [y for y in range(first, last + 1) if self.is_provisional(y)]

    def describe_year(self, year: int) -> str:
        """Where ``year``'s workdays come from, in words an auditor can check."""
        source = self.year_source(year)
        if source is YearSource.SITE:
            notice = f" ({self.years[year].source})" if self.years[year].source else ""
            return f"{self.source or 'the site calendar file'}{notice}"
        if source is YearSource.PACKAGE:
            return f"chinese-calendar {chinese_calendar.__version__}"
        return f"provisional: statutory rules {statutory.RULES} ({statutory.package_version()}), no 调休 known"

    def is_workday(self, d: date) -> bool:
        _require_date(d)
        answer = self._cache.get(d)
        if answer is None:
            answer = self._cache[d] = self._decide(d)
        return answer

    def _decide(self, d: date) -> bool:
        if d in self.extra_closed:
            return False
        if d in self.extra_working:
            return True
        if d in self._listed:
            return self._listed[d]
        if d.year in self.years:
            return d.weekday() < 5
        if d in OFFICIAL_CORRECTIONS:
            return OFFICIAL_CORRECTIONS[d]
        if self.year_source(d.year) is YearSource.PROVISIONAL:
            return statutory.is_workday(d)
        return chinese_calendar.is_workday(d)

    def next_workday(self, d: date) -> date:
        """The first workday strictly after ``d``."""
        return self._step_workday(d, 1)

    def previous_workday(self, d: date) -> date:
        """The last workday strictly before ``d``."""
        return self._step_workday(d, -1)

    def _step_workday(self, d: date, step: int) -> date:
        _require_date(d)
        for offset in range(1, _MAX_IDLE_DAYS + 1):
            candidate = d + timedelta(days=step * offset)
            if self.is_workday(candidate):
                return candidate
        raise CalendarError(f"no working day within {_MAX_IDLE_DAYS} days of {d}; check the calendar file")

    # -- instants ----------------------------------------------------------------------

    def _local(self, t: datetime) -> datetime:
        _require_aware(t)
        return t.astimezone(self.zone)

    def _at(self, d: date, clock: time) -> datetime:
        return datetime.combine(d, clock, tzinfo=self.zone)

    def day_periods(self, d: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working periods of ``d`` as aware datetimes (empty on a day off).

        Remembered per date: every deadline and every clock step walks the days from its
        start, so the same few days are asked for again and again.
        """
        spans = self._periods_cache.get(d)
        if spans is None:
            spans = ((tuple((self._at(d, start), self._at(d, end)) for start, end in self.periods)
                      if self.is_workday(d) else ()))
            self._periods_cache[d] = spans
        return spans

    def end_of_day(self, d: date) -> datetime:
        """End of the last working period of ``d`` (whether or not ``d`` is a workday)."""
        return self._at(d, self.periods[-1][1])

    def _periods_from(self, t: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working periods (clipped to start at ``t``) that end after ``t``, forever."""
        day, idle = t.date(), 0
        while True:
            spans = self.day_periods(day)
            idle = 0 if spans else idle + 1
            if idle > _MAX_IDLE_DAYS:
                raise CalendarError(f"no working time within {_MAX_IDLE_DAYS} days after {t}; check the calendar file")
            for start, end in spans:
                if end > t:
                    yield max(start, t), end
            day += timedelta(days=1)

    def in_working_time(self, t: datetime) -> bool:
        local = self._local(t)
        if not self.is_workday(local.date()):
            return False
        return any(start <= local.time() < end for start, end in self.periods)

    def next_working_instant(self, t: datetime) -> datetime:
        """``t`` itself when inside working time, else the start of the next period."""
        start, _ = next(self._periods_from(self._local(t)))
        return start

    def add_working_time(self, start: datetime, delta: timedelta) -> datetime:
        """The earliest instant at which ``delta`` of working time has passed since ``start``."""
        local = self._local(start)
        if delta < timedelta(0):
            raise ValueError(f"cannot add a negative working time ({delta})")
        if not delta:
            return local
        remaining = delta
        for begin, end in self._periods_from(local):
            span = _between(begin, end)
            if remaining <= span:
                return (begin.astimezone(_UTC) + remaining).astimezone(self.zone)
            remaining -= span
        raise AssertionError("unreachable: _periods_from never ends")

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time inside ``[a, b]``; the inverse of :meth:`add_working_time`."""
        a, b = self._local(a), self._local(b)
        if b < a:
            raise ValueError(f"working_time_between needs a <= b, got {a} > {b}")
        total = timedelta(0)
        for begin, end in self._periods_from(a):
            if begin >= b:
                break
            total += _between(begin, min(end, b))
        return total

    def add_workdays(self, start: datetime, n: int, mode: str) -> datetime:
        """Deadline ``n`` workdays after ``start``; see docs/working-time.md for both modes.

        ``"end_of_day"``: the end of working hours of the n-th workday strictly after the
        calendar date of ``start`` (the day of receipt never counts, whatever the hour and
        whether or not it is a workday). ``n == 0``: the end of the start's own day if it is
        a workday not yet over, else the end of the next workday.
        ``"working_hours"``: ``n`` x :attr:`day_length` added with :meth:`add_working_time`.
        """
        local = self._local(start)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"number of workdays must be a whole number >= 0, not {n!r}")
        if mode == "working_hours":
            return self.add_working_time(local, n * self.day_length)
        if mode != "end_of_day":
            raise ValueError(f"unknown workday mode {mode!r}; use one of {', '.join(WORKDAY_MODES)}")
        day = local.date()
        if n == 0:
            if self.is_workday(day) and self.end_of_day(day) >= local:
                return self.end_of_day(day)
            return self.end_of_day(self.next_workday(day))
        for _ in range(n):
            day = self.next_workday(day)
        return self.end_of_day(day)

    month_day_or_last = staticmethod(month_day_or_last)

    def __repr__(self) -> str:
        hours = ", ".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in self.periods)
        return f"WorkCalendar(zone={self.zone.key!r}, periods=[{hours}], source={self.source!r})"


# -- the calendar file ------------------------------------------------------------------

_FILE_KEYS = ("zone", "working_hours", "extra_closed", "extra_working", "years")
_YEAR_KEYS = ("holidays", "workdays", "source")
_MAX_RANGE_DAYS = 366
Dated = tuple[date, yaml.Node]


def load_calendar_file(path: Path) -> CalendarArgs:
    """Read a calendar override file into :class:`WorkCalendar` keyword arguments.

    All keys are optional; every problem is reported at once (ProcedureError with
    file:line:col)::

        zone: Asia/Shanghai
        working_hours:                     # quote times: YAML 1.1 reads 9:00 as 540
          - {start: "09:00", end: "12:00"}
          - {start: "13:30", end: "18:00"}
        extra_closed: [2025-12-31]         # a date, "YYYY-MM-DD", or "YYYY-MM-DD..YYYY-MM-DD"
        extra_working: ["2025-10-12"]
        years:                             # whole years from a State Council notice
          2027:
            source: "国办发明电〔2026〕NN号"
            holidays: ["2027-01-01..2027-01-03"]
            workdays: [2027-02-06]         # make-up working weekends (调休)
    """
    reader = _FileReader(str(path))
    kwargs = reader.read()
    if reader.issues:
        raise ProcedureError(reader.issues)
    return kwargs


class _FileReader:
    """Walks the composed YAML nodes so every issue carries its line and column."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.issues: list[Issue] = []
        self._constructor = yaml.SafeLoader("")

    def problem(self, where: yaml.Node | yaml.Mark | None, path: str, message: str) -> None:
        mark = where if isinstance(where, yaml.Mark) else getattr(where, "start_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        self.issues.append(Issue(self.name, line, col, message, path=path))

    def value(self, node: yaml.Node) -> object:
        return self._constructor.construct_object(node, deep=True)

    def read(self) -> CalendarArgs:
        try:
            root = yaml.compose(Path(self.name).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except OSError as exc:
            self.problem(None, "", f"cannot read the calendar file: {exc.strerror or exc}")
            return {}
        except yaml.YAMLError as exc:
            self.problem(getattr(exc, "problem_mark", None), "", f"not valid YAML: {getattr(exc, 'problem', None) or exc}")
            return {}
        fields = self.mapping(root, "", _FILE_KEYS) if root is not None else {}
        kwargs: CalendarArgs = {}
        # (a value not read is None, with an issue that keeps the file from being used)
        if "zone" in fields and (zone := self.zone(fields["zone"])) is not None:
            kwargs["zone"] = zone
        if "working_hours" in fields and (periods := self.working_hours(fields["working_hours"])) is not None:
            kwargs["periods"] = periods
        closed = self.dates(fields["extra_closed"], "extra_closed") if "extra_closed" in fields else []
        working = self.dates(fields["extra_working"], "extra_working") if "extra_working" in fields else []
        closed_days = {d for d, _ in closed}
        for d, node in working:
            if d in closed_days:
                self.problem(node, "extra_working", f"{d} is also in extra_closed; keep it in one list")
        kwargs["extra_closed"] = closed_days
        kwargs["extra_working"] = {d for d, _ in working}
        if "years" in fields:
            kwargs["years"] = self.years(fields["years"])
        return kwargs

    def mapping(self, node: yaml.Node, path: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, f"expected a mapping with keys {', '.join(allowed)}")
            return {}
        found: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(self.value(key_node))
            if key not in allowed:
                self.problem(key_node, path, f"unknown key {key!r}; allowed: {', '.join(allowed)}")
            elif key in found:
                self.problem(key_node, path, f"key {key!r} appears twice")
            else:
                found[key] = value_node
        return found

    def zone(self, node: yaml.Node) -> str | None:
        name = self.value(node)
        try:
            ZoneInfo(str(name))
        except (ValueError, KeyError):
            self.problem(node, "zone", f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)")
            return None
        return str(name)

    def working_hours(self, node: yaml.Node) -> list[tuple[time, time]] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, "working_hours", 'expected a list like - {start: "09:00", end: "12:00"}')
            return None
        periods: list[tuple[time, time]] = []
        known = len(self.issues)
        for i, item in enumerate(node.value):
            fields = self.mapping(item, f"working_hours[{i}]", ("start", "end"))
            clocks = [self.clock(fields[k], f"working_hours[{i}].{k}") for k in ("start", "end") if k in fields]
            if len(fields) < 2:
                self.problem(item, f"working_hours[{i}]", "a period needs both start and end")
            elif clocks[0] is not None and clocks[1] is not None:
                periods.append((clocks[0], clocks[1]))
        if len(self.issues) > known:  # an item is wrong: checking the rest would only echo it
            return None
        try:
            return list(normalise_periods(periods))
        except ValueError as exc:
            self.problem(node, "working_hours", str(exc))
            return None

    def clock(self, node: yaml.Node, path: str) -> time | None:
        try:
            return parse_clock(self.value(node))
        except ValueError as exc:
            self.problem(node, path, str(exc))
            return None

    def dates(self, node: yaml.Node, path: str) -> list[Dated]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, path, "expected a list of dates (YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)")
            return []
        found: list[Dated] = []
        for i, item in enumerate(node.value):
            try:
                found.extend((d, item) for d in _read_dates(self.value(item)))
            except ValueError as exc:
                self.problem(item, f"{path}[{i}]", str(exc))
        return found

    def years(self, node: yaml.Node) -> dict[int, YearDefinition]:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "years", "expected a mapping from year (e.g. 2027) to its holidays and workdays")
            return {}
        result: dict[int, YearDefinition] = {}
        for key_node, body in node.value:
            year = self.value(key_node)
            if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2200:
                self.problem(key_node, "years", f"{year!r} is not a year; write e.g. 2027:")
            elif year in result:
                self.problem(key_node, "years", f"year {year} is defined twice")
            else:
                result[year] = self.year(year, body)
        return result

    def year(self, year: int, node: yaml.Node) -> YearDefinition:
        path = f"years.{year}"
        fields = self.mapping(node, path, _YEAR_KEYS)
        off = self.dates(fields["holidays"], f"{path}.holidays") if "holidays" in fields else []
        on = self.dates(fields["workdays"], f"{path}.workdays") if "workdays" in fields else []
        source = str(self.value(fields["source"])) if "source" in fields else ""
        definition = YearDefinition(frozenset(d for d, _ in off), frozenset(d for d, _ in on), source)
        where = {d: (node, f"{path}.holidays") for d, node in off} | {d: (node, f"{path}.workdays") for d, node in on}
        for d, reason in definition.problems(year):
            self.problem(*where[d], reason)
        return definition


def _read_dates(raw: object) -> list[date]:
    """A YAML date, ``"YYYY-MM-DD"`` or an inclusive range ``"YYYY-MM-DD..YYYY-MM-DD"``."""
    if isinstance(raw, datetime):
        raise ValueError(f"{raw} has a time of day; give a date only")
    if isinstance(raw, date):
        return [raw]
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not a date; write YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
    first, sep, last = raw.strip().partition("..")
    try:
        begin = date.fromisoformat(first.strip())
        end = date.fromisoformat(last.strip()) if sep else begin
    except ValueError:
        raise ValueError(f"{raw!r} is not a date; write YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD") from None
    if end < begin or (end - begin).days >= _MAX_RANGE_DAYS:
        raise ValueError(f"range {raw!r} must go forward and span at most {_MAX_RANGE_DAYS} days")
    return [begin + timedelta(days=i) for i in range((end - begin).days + 1)]
