"""Durations as procedure authors write them: ``15s``, ``7 days``, ``4 working hours``, ``1 workday``.

Why a small grammar of our own: a wall-clock parser such as pytimeparse2 would cover
``15s`` and ``7 days`` but not the two kinds that matter most here - working time
(``4 working hours``, counted only inside working hours) and working days (``3 workdays``,
which need a deadline *mode*) - nor procedure-defined units (``3 rings`` with
``ring: 5s``, rule PHN-1). One table of units and one regular expression keep all three
kinds in one place, with an error message that lists what is accepted.

Grammar: one or more terms ``<number> <unit>`` (``1h 30m``, ``2 hours 15 minutes``), all
of the same kind. Numbers are whole or decimal (``1.5 hours``); workdays must be whole
and stand alone. Units, singular or plural, any case:

- wall clock: s, sec, second; m, min, minute; h, hr, hour; d, day; w, week
- working time: working minute, working hour
- working days: workday, working day
- procedure units: names given in ``units`` (``{"ring": "5s"}``), in terms of the above.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from engine.calendar import WorkCalendar

Kind = Literal["wall", "working", "workdays"]

_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
            "h": 3600, "hr": 3600, "hour": 3600, "d": 86400, "day": 86400, "w": 604800, "week": 604800}
_UNITS: dict[str, tuple[Kind, int]] = {
    **{name: ("wall", seconds) for name, seconds in _SECONDS.items()},
    "working minute": ("working", 60),
    "working hour": ("working", 3600),
    "workday": ("workdays", 1),
    "working day": ("workdays", 1),
}
_TERM = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+(?:\s+[a-z]+)?)\s*")
_NAME = re.compile(r"[a-z]+(?: [a-z]+)?")
_ACCEPTED = (
    "a number and a unit, e.g. 15s, 30m, 2h, 7 days, 90 seconds (wall clock); "
    "30 working minutes, 4 working hours (working time); 1 workday, 3 workdays (working days)"
)


@dataclass(frozen=True)
class Duration:
    """A parsed duration. ``amount`` is a timedelta (wall, working) or an int (workdays)."""

    kind: Kind
    amount: timedelta | int
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"{self.amount} ({self.kind})"

    def add_to(self, t: datetime, calendar: WorkCalendar | None, workday_mode: str = "end_of_day") -> datetime:
        """``t`` plus this duration: wall clock, in working time, or in workdays (see modes)."""
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"{t} has no time zone; durations are added to timezone-aware datetimes")
        if self.kind == "wall":
            end = t.astimezone(timezone.utc) + self.amount  # type: ignore[operator]  # kind tags amount: a timedelta for wall and working
            return end.astimezone(calendar.zone if calendar else t.tzinfo)
        if calendar is None:
            raise ValueError(f"{self} is counted on the working calendar; pass one")
        if self.kind == "working":
            return calendar.add_working_time(t, self.amount)  # type: ignore[arg-type]  # kind tags amount: a timedelta for wall and working
        return calendar.add_workdays(t, self.amount, workday_mode)  # type: ignore[arg-type]  # kind tags amount: an int for workdays

    def measure(self, a: datetime, b: datetime, calendar: WorkCalendar | None) -> timedelta:
        """Time from ``a`` to ``b`` in this duration's own terms.

        Wall durations measure wall-clock time; working-time and workday durations measure
        working time (compare a workday count with ``n * calendar.day_length``).
        """
        if self.kind == "wall":
            return b.astimezone(timezone.utc) - a.astimezone(timezone.utc)
        if calendar is None:
            raise ValueError(f"{self} is counted on the working calendar; pass one")
        return calendar.working_time_between(a, b)


def parse_duration(text: str, units: Mapping[str, str] | None = None) -> Duration:
    """Parse ``text`` (see the module docstring); ValueError says what is accepted.

    Results are remembered per text and unit table: every start of an instance reads the
    same few SLA goals again.
    """
    if not isinstance(text, str):
        raise ValueError(f"a duration must be text such as \"15m\", not {text!r}")
    return _parse_duration(text, tuple(sorted((units or {}).items())))


@lru_cache(maxsize=1024)
def _parse_duration(text: str, unit_items: tuple[tuple[str, str], ...]) -> Duration:
    units = dict(unit_items)
    if text.strip().startswith("-"):
        raise _error(text, "durations are never negative (subtract in the expression: starts_at - 15m)", units)
    table: dict[str, tuple[Kind, Fraction | int]] = {**_UNITS, **_procedure_units(units or {})}
    terms = _terms(text, table, units or {})
    kinds = {kind for kind, _ in terms}
    if len(kinds) > 1:
        raise _error(text, f"it mixes {' and '.join(sorted(kinds))} terms; write one kind", units)
    kind = kinds.pop()
    total = sum((amount for _, amount in terms), Fraction(0))
    if kind == "workdays":
        if len(terms) > 1 or total.denominator != 1:
            raise _error(text, "workdays must be one whole number", units)
        return Duration("workdays", int(total), text.strip())
    return Duration(kind, timedelta(microseconds=round(total * 1_000_000)), text.strip())


def _terms(text: str, table: Mapping[str, tuple[Kind, Fraction | int]], units: Mapping[str, str]) -> list[tuple[Kind, Fraction]]:
    """Split ``text`` into (kind, seconds-or-days) terms, refusing anything left over."""
    lowered, position, terms = text.lower(), 0, []
    while position < len(lowered):
        match = _TERM.match(lowered, position)
        if not match:
            raise _error(text, f"cannot read {text[position:].strip()!r}", units)
        number, name = Fraction(match.group(1)), " ".join(match.group(2).split())
        unit = _lookup(name, table)
        if unit is None:
            raise _error(text, f"unknown unit {name!r}", units)
        terms.append((unit[0], number * unit[1]))
        position = match.end()
    if not terms:
        raise _error(text, "it is empty", units)
    return terms


def _lookup(name: str, table: Mapping[str, tuple[Kind, Fraction | int]]) -> tuple[Kind, Fraction | int] | None:
    """Singular or plural (``ring``/``rings``); ``ms`` is not a plural of ``m``."""
    singular = name[:-1] if name.endswith("s") and len(name) > 2 else None
    for candidate in (name, singular):
        if candidate and candidate in table:
            return table[candidate]
    return None


def _procedure_units(units: Mapping[str, str]) -> dict[str, tuple[Kind, Fraction]]:
    """Procedure units defined in built-in terms, e.g. ``{"ring": "5s"}``."""
    table: dict[str, tuple[Kind, Fraction]] = {}
    for raw_name, definition in units.items():
        name = " ".join(str(raw_name).lower().split())
        if not _NAME.fullmatch(name):
            raise ValueError(f"unit name {raw_name!r} must be one or two words of letters")
        if _lookup(name, _UNITS) is not None:
            raise ValueError(f"unit name {raw_name!r} would hide the built-in unit of that name")
        base = parse_duration(str(definition))
        amount = Fraction(base.amount) if base.kind == "workdays" else _seconds(base.amount)  # type: ignore[arg-type]  # kind tags amount: an int for workdays, else a timedelta
        table[name] = (base.kind, amount)
    return table


def _seconds(amount: timedelta) -> Fraction:
    return Fraction(amount // timedelta(microseconds=1), 1_000_000)


def _error(text: str, reason: str, units: Mapping[str, str] | None) -> ValueError:
    extra = f"; procedure units: {', '.join(sorted(units))}" if units else ""
    return ValueError(f"cannot read {text!r} as a duration: {reason}. Accepted: {_ACCEPTED}{extra}")
