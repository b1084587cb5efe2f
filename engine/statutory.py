"""The provisional working calendar of a year no State Council notice is known for.

Why this module exists: the ``chinese_calendar`` package and the site's calendar file only
know the years whose holiday notice (放假安排通知) has been published, and the notice for
next year comes out each November. The office cannot stop on 31 December: a resident's
complaint received on 30 December has a deadline in January all the same. For such a year
the days off are built from the statutory rules themselves, the 全国年节及纪念日放假办法 as
amended in 2024 (in force from 2025):

- 元旦 1 day (1 January);
- 春节 4 days (农历除夕 and 正月初一 to 初三);
- 清明节 1 day (the day of the 清明 solar term);
- 劳动节 2 days (1-2 May);
- 端午节 1 day (五月初五);
- 中秋节 1 day (八月十五);
- 国庆节 3 days (1-3 October);
- article 6: a holiday for everyone that falls on a Saturday or Sunday is given back on
  the next workday (补假).

Saturdays and Sundays are days off; no make-up working weekend (调休) is guessed, since
only the notice can say which. The lunar dates and the observed days come from the
maintained ``holidays`` package (its China calendar implements these rules with its own
lunisolar tables for 1950-2100), not from code of ours. Outside those years the package
has nothing; there the fixed-date holidays and weekends are all that is known.

Every deadline computed on such a day is flagged ``provisional`` by the engine, and
``sop calendar repair`` recomputes them once the real notice is added.
"""
from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

RULES = "全国年节及纪念日放假办法（2024年修订）"
_FIXED: tuple[tuple[int, int], ...] = ((1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3))


def package_version() -> str:
    return f"holidays {holidays.__version__}"


@lru_cache(maxsize=64)
def days_off(year: int) -> frozenset[date]:
    """The statutory holidays of ``year`` and their observed days, weekends not included."""
    found = frozenset(holidays.China(years=year, observed=True))
    if found:
        return found
    return frozenset(_with_observed(year, [date(year, m, d) for m, d in _FIXED]))


def _with_observed(year: int, fixed: list[date]) -> set[date]:
    """Article 6 for the fixed-date holidays, where the package has no table for the year."""
    off = set(fixed)
    for d in fixed:
        if d.weekday() >= 5:
            day = d + timedelta(days=1)
            while day.weekday() >= 5 or day in off:
                day += timedelta(days=1)
            off.add(day)
    return {d for d in off if d.year == year}


def is_workday(d: date) -> bool:
    """A provisional answer: Monday-Friday except the statutory days off."""
    return d.weekday() < 5 and d not in days_off(d.year)
