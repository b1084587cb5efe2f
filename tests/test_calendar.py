"""Working calendar: known days, a second source, overrides, the file, working-time maths."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import (
    OFFICIAL_CORRECTIONS,
    SHIPPED_FILE,
    WorkCalendar,
    YearDefinition,
    month_day_or_last,
)
from engine.errors import ProcedureError

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=SH)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# -- known days ----------------------------------------------------------------------------


def test_national_day_2025_and_its_make_up_weekends():
    assert CAL.is_workday(date(2025, 9, 28))  # Sunday, make-up workday (调休)
    assert CAL.is_workday(date(2025, 9, 30))
    assert not any(CAL.is_workday(d) for d in days(date(2025, 10, 1), date(2025, 10, 8)))
    assert CAL.is_workday(date(2025, 10, 9))
    assert CAL.is_workday(date(2025, 10, 11))  # Saturday, make-up workday
    assert not CAL.is_workday(date(2025, 10, 12))  # an ordinary Sunday


def test_spring_festival_2026():
    assert CAL.is_workday(date(2026, 2, 13))
    assert CAL.is_workday(date(2026, 2, 14))  # Saturday, make-up workday
    assert not any(CAL.is_workday(d) for d in days(date(2026, 2, 15), date(2026, 2, 23)))
    assert CAL.is_workday(date(2026, 2, 24))
    assert CAL.is_workday(date(2026, 2, 28))  # Saturday, make-up workday


def test_next_and_previous_workday_cross_national_day():
    assert CAL.next_workday(date(2025, 9, 30)) == date(2025, 10, 9)
    assert CAL.previous_workday(date(2025, 10, 9)) == date(2025, 9, 30)
    assert CAL.next_workday(date(2025, 9, 26)) == date(2025, 9, 28)  # Friday -> make-up Sunday
    assert CAL.previous_workday(date(2025, 9, 29)) == date(2025, 9, 28)


def test_datetime_is_not_a_date():
    with pytest.raises(TypeError):
        CAL.is_workday(at(2025, 10, 1))


# -- a second source ---------------------------------------------------------------------

# Dates where the two maintained packages disagree, with who is right. The calendar follows
# the official notice (engine.calendar.OFFICIAL_CORRECTIONS); the raw package does not.
KNOWN_DISAGREEMENTS = {
    # 2006 notice (国办发明电〔2005〕35号): "12月31日（星期六）上班". `holidays` has it as
    # a make-up workday, chinese_calendar 1.11 as a day off. The notice wins.
    date(2005, 12, 31): True,
}


@pytest.fixture(scope="module")
def second_source() -> holidays.HolidayBase:
    # 2004 is chinese_calendar's first year; 2027 is populated so that make-up days it
    # assigns to the previous December (none today) would be seen.
    return holidays.China(years=range(2004, 2028))


def test_holidays_package_exposes_make_up_workdays(second_source):
    # Guard: without this the comparison below would only test public holidays.
    assert date(2025, 9, 28) in second_source.weekend_workdays
    assert second_source.is_working_day(date(2025, 10, 11))


@pytest.mark.parametrize("year", range(2020, 2027))
def test_agrees_with_holidays_package_2020_2026(year, second_source):
    for d in days(date(year, 1, 1), date(year, 12, 31)):
        assert CAL.is_workday(d) == second_source.is_working_day(d), d
        if d in second_source:  # a named holiday or substituted day off
            assert not CAL.is_workday(d), (d, second_source.get(d))


def test_agrees_with_holidays_package_2004_2019_except_documented(second_source):
    import chinese_calendar

    for d in days(date(2004, 1, 1), date(2019, 12, 31)):
        assert CAL.is_workday(d) == second_source.is_working_day(d), d
        if d in KNOWN_DISAGREEMENTS:
            assert chinese_calendar.is_workday(d) != KNOWN_DISAGREEMENTS[d]
            assert CAL.is_workday(d) == KNOWN_DISAGREEMENTS[d]
    assert set(KNOWN_DISAGREEMENTS) == set(OFFICIAL_CORRECTIONS)


# -- overrides and unknown years -----------------------------------------------------------

# Illustrative, not the real 2027 notice (which is not published yet).
YEAR_2027 = YearDefinition(
    holidays=frozenset([date(2027, 1, 1), *days(date(2027, 2, 5), date(2027, 2, 11))]),
    workdays=frozenset([date(2027, 2, 13)]),
)


# 2027 from the statutory rules alone (全国年节及纪念日放假办法, 2024): worked out by hand
# from the lunar calendar (除夕 2027-02-05, 清明 04-05, 端午 06-09, 中秋 09-15) and article 6
# (a holiday on a weekend is given back on the next workday).
STATUTORY_2027_OFF = {
    date(2027, 1, 1),                                                        # 元旦, Friday
    date(2027, 2, 5), date(2027, 2, 8), date(2027, 2, 9), date(2027, 2, 10),  # 除夕..初三 + 补假 for Sat/Sun
    date(2027, 4, 5),                                                        # 清明, Monday
    date(2027, 5, 3), date(2027, 5, 4),                                      # 劳动节 Sat/Sun given back
    date(2027, 6, 9), date(2027, 9, 15),                                     # 端午, 中秋
    date(2027, 10, 1), date(2027, 10, 4), date(2027, 10, 5),                 # 国庆 Fri + Sat/Sun given back
}


def test_unknown_year_gets_the_provisional_statutory_calendar():
    assert CAL.year_source(2027) == "provisional" and CAL.is_provisional(2027)
    assert CAL.year_source(2026) == "package" and not CAL.is_provisional(2026)
    weekdays_off = {d for d in days(date(2027, 1, 1), date(2027, 12, 31)) if d.weekday() < 5 and not CAL.is_workday(d)}
    assert weekdays_off == STATUTORY_2027_OFF
    weekend_work = [d for d in days(date(2027, 1, 1), date(2027, 12, 31)) if d.weekday() >= 5 and CAL.is_workday(d)]
    assert weekend_work == []  # no make-up weekend is guessed
    assert "provisional" in CAL.describe_year(2027) and "2024" in CAL.describe_year(2027)
    # Before the package's first year the same rules of the time answer (holidays' history).
    assert not CAL.is_workday(date(2003, 10, 1)) and CAL.is_provisional(2003)


def test_provisional_years_outside_the_lunar_tables_keep_the_fixed_holidays():
    assert not CAL.is_workday(date(2150, 10, 1))  # a Thursday, 国庆
    assert CAL.is_workday(date(2150, 10, 6)) and not CAL.is_workday(date(2150, 1, 1))


def test_arithmetic_into_an_unknown_year_never_refuses():
    # Thursday 2026-12-31 + 1 workday: Friday 2027-01-01 is 元旦, so Monday 2027-01-04.
    assert CAL.add_workdays(at(2026, 12, 31, 10), 1, "end_of_day") == at(2027, 1, 4, 18)
    assert CAL.add_workdays(at(2026, 12, 30, 10), 5, "end_of_day") == at(2027, 1, 7, 18)
    assert CAL.provisional_years(at(2026, 12, 30, 10), at(2027, 1, 7, 18)) == [2027]
    assert CAL.provisional_years(at(2026, 1, 30, 10), at(2026, 12, 31, 18)) == []


def test_year_definition_makes_2027_work():
    cal = WorkCalendar(years={2027: YEAR_2027})
    assert 2027 in cal.covered_years() and 2026 in cal.covered_years()
    assert not cal.is_workday(date(2027, 1, 1))  # listed holiday, a Friday
    assert cal.is_workday(date(2027, 1, 4))  # ordinary Monday
    assert not cal.is_workday(date(2027, 1, 9))  # ordinary Saturday
    assert cal.is_workday(date(2027, 2, 13))  # listed make-up Saturday
    assert cal.next_workday(date(2027, 2, 4)) == date(2027, 2, 12)
    assert cal.add_workdays(at(2026, 12, 31, 10), 1, "end_of_day") == at(2027, 1, 4, 18)


def test_extra_closed_and_extra_working():
    cal = WorkCalendar(extra_closed=[date(2025, 12, 31)], extra_working=[date(2025, 10, 12)])
    assert not cal.is_workday(date(2025, 12, 31))
    assert cal.is_workday(date(2025, 10, 12))
    assert cal.next_workday(date(2025, 12, 30)) == date(2026, 1, 4)  # 1-3 Jan 2026 off, 4th make-up
    with pytest.raises(ValueError, match="both"):
        WorkCalendar(extra_closed=[date(2025, 1, 2)], extra_working=[date(2025, 1, 2)])


def test_year_definition_rejects_dates_of_other_years():
    with pytest.raises(ValueError, match="outside 2027"):
        WorkCalendar(years={2027: {"holidays": [date(2026, 6, 1)]}})
    ok = WorkCalendar(years={2027: {"workdays": [date(2026, 12, 27)]}})  # previous December
    assert ok.is_workday(date(2026, 12, 27))


# -- the calendar file ----------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_file_loads_and_matches_defaults():
    assert SHIPPED_FILE.exists()
    cal = WorkCalendar.default()
    assert cal.periods == CAL.periods and cal.zone == CAL.zone
    assert cal.day_length == timedelta(hours=7, minutes=30)


def test_file_with_a_year_extra_days_and_hours(tmp_path):
    path = write(tmp_path, """
zone: Asia/Shanghai
working_hours:
  - {start: "08:30", end: "12:00"}
  - {start: "14:00", end: "17:30"}
extra_closed: [2025-12-31]
extra_working: ["2025-10-12"]
years:
  2027:
    source: example only
    holidays: ["2027-02-05..2027-02-11", 2027-01-01]
    workdays: [2027-02-13]
""")
    cal = WorkCalendar.from_file(path)
    assert cal.day_length == timedelta(hours=7)
    assert not cal.is_workday(date(2025, 12, 31)) and cal.is_workday(date(2025, 10, 12))
    assert cal.is_workday(date(2027, 2, 13)) and not cal.is_workday(date(2027, 2, 8))
    assert cal.years[2027].source == "example only"


def test_file_rejects_unquoted_times_with_location(tmp_path):
    path = write(tmp_path, "working_hours:\n  - {start: 9:00, end: \"12:00\"}\n")
    with pytest.raises(ProcedureError) as err:
        WorkCalendar.from_file(path)
    [issue] = err.value.issues  # no echo such as "need at least one period"
    assert (issue.line, issue.col, issue.path) == (2, 13, "working_hours[0].start")
    assert "540" in issue.message and str(path) in str(err.value)


def test_file_reports_every_problem_at_once(tmp_path):
    path = write(tmp_path, """
zone: Mars/Olympus
extra_closed: [2025-13-01, "2025-10-12 09:00"]
years:
  2027:
    holidays: [2026-06-01]
    workdays: [2027-01-01]
    extra: 1
  twenty: {}
colour: blue
""")
    with pytest.raises(ProcedureError) as err:
        WorkCalendar.from_file(path)
    messages = {(i.line, i.path): i.message for i in err.value.issues}
    assert "Mars/Olympus" in messages[(2, "zone")]
    assert any(p == "extra_closed[0]" for _, p in messages)
    assert "outside 2027" in messages[(6, "years.2027.holidays")]
    assert "unknown key 'extra'" in messages[(8, "years.2027")]
    assert "not a year" in messages[(9, "years")]
    assert "unknown key 'colour'" in messages[(10, "")]


def test_file_overlapping_periods_and_bad_yaml(tmp_path):
    overlap = write(tmp_path, 'working_hours:\n  - {start: "09:00", end: "14:00"}\n  - {start: "13:30", end: "18:00"}\n')
    with pytest.raises(ProcedureError, match="overlap"):
        WorkCalendar.from_file(overlap)
    broken = write(tmp_path, "zone: [unclosed\n")
    with pytest.raises(ProcedureError, match="not valid YAML"):
        WorkCalendar.from_file(broken)
    with pytest.raises(ProcedureError, match="cannot read"):
        WorkCalendar.from_file(tmp_path / "missing.yaml")


def test_empty_file_means_defaults(tmp_path):
    cal = WorkCalendar.from_file(write(tmp_path, "# nothing\n"))
    assert cal.periods == CAL.periods


# -- working hours ---------------------------------------------------------------------------


def test_in_working_time_is_half_open():
    assert CAL.in_working_time(at(2025, 9, 30, 9))
    assert CAL.in_working_time(at(2025, 9, 30, 11, 59, 59))
    assert not CAL.in_working_time(at(2025, 9, 30, 12))
    assert CAL.in_working_time(at(2025, 9, 30, 13, 30))
    assert not CAL.in_working_time(at(2025, 9, 30, 18))
    assert not CAL.in_working_time(at(2025, 10, 1, 10))  # holiday
    assert CAL.in_working_time(datetime(2025, 9, 30, 2, tzinfo=timezone.utc))  # 10:00 in Shanghai


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="time zone"):
        CAL.add_working_time(datetime(2025, 9, 30, 10), timedelta(hours=1))


def test_next_working_instant():
    assert CAL.next_working_instant(at(2025, 9, 30, 10)) == at(2025, 9, 30, 10)
    assert CAL.next_working_instant(at(2025, 9, 30, 12)) == at(2025, 9, 30, 13, 30)
    assert CAL.next_working_instant(at(2025, 9, 30, 18)) == at(2025, 10, 9, 9)
    utc = CAL.next_working_instant(datetime(2025, 9, 30, 0, tzinfo=timezone.utc))
    assert utc == at(2025, 9, 30, 9) and utc.tzinfo == SH


def test_add_working_time_period_end_convention():
    assert CAL.add_working_time(at(2025, 9, 30, 17, 55), timedelta(minutes=5)) == at(2025, 9, 30, 18)
    assert CAL.add_working_time(at(2025, 9, 30, 17, 55), timedelta(minutes=6)) == at(2025, 10, 9, 9, 1)
    assert CAL.add_working_time(at(2025, 9, 30, 11), timedelta(hours=1)) == at(2025, 9, 30, 12)
    assert CAL.add_working_time(at(2025, 9, 30, 20), timedelta(0)) == at(2025, 9, 30, 20)
    with pytest.raises(ValueError):
        CAL.add_working_time(at(2025, 9, 30, 10), timedelta(minutes=-1))


def test_working_time_between():
    assert CAL.working_time_between(at(2025, 9, 30, 17), at(2025, 10, 9, 10)) == timedelta(hours=2)
    assert CAL.working_time_between(at(2025, 10, 2), at(2025, 10, 5)) == timedelta(0)
    with pytest.raises(ValueError):
        CAL.working_time_between(at(2025, 10, 9), at(2025, 10, 8))


# -- workdays, the two modes (rule CMP-3) --------------------------------------------------


def test_cmp3_complaint_at_1755_before_national_day_both_modes():
    received = at(2025, 9, 30, 17, 55)  # Tuesday, last workday before National Day 2025
    # end_of_day: the end of working hours of the first workday after the day of receipt.
    assert CAL.add_workdays(received, 1, "end_of_day") == at(2025, 10, 9, 18)
    # working_hours: 7.5 working hours = 5 min on 30 Sep + 3 h + 4 h 25 min on 9 Oct.
    assert CAL.add_workdays(received, 1, "working_hours") == at(2025, 10, 9, 17, 55)
    assert CAL.add_workdays(received, 3, "end_of_day") == at(2025, 10, 11, 18)  # make-up Saturday


def test_add_workdays_edge_days():
    saturday = at(2025, 10, 18, 10)  # an ordinary Saturday: the day of receipt never counts
    assert CAL.add_workdays(saturday, 1, "end_of_day") == at(2025, 10, 20, 18)
    assert CAL.add_workdays(saturday, 1, "working_hours") == at(2025, 10, 20, 18)
    assert CAL.add_workdays(at(2025, 10, 20, 8), 0, "end_of_day") == at(2025, 10, 20, 18)
    assert CAL.add_workdays(at(2025, 10, 20, 19), 0, "end_of_day") == at(2025, 10, 21, 18)
    with pytest.raises(ValueError, match="mode"):
        CAL.add_workdays(saturday, 1, "calendar")
    with pytest.raises(ValueError):
        CAL.add_workdays(saturday, -1, "end_of_day")


def test_month_day_or_last():
    assert month_day_or_last(2026, 2, 30) == date(2026, 2, 28)
    assert month_day_or_last(2024, 2, 30) == date(2024, 2, 29)
    assert month_day_or_last(2026, 4, 31) == date(2026, 4, 30)
    assert WorkCalendar.month_day_or_last(2026, 1, 16) == date(2026, 1, 16)


def test_long_spans_are_fast():
    start = at(2004, 1, 5, 9)
    end = CAL.add_working_time(start, timedelta(hours=7.5 * 5000))
    assert end.year == 2024
    assert CAL.working_time_between(start, end) == timedelta(hours=7.5 * 5000)


# -- properties ----------------------------------------------------------------------------

# Across the package's last year into provisional ones: arithmetic must not notice the seam.
starts = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2029, 12, 31), timezones=st.just(SH))
deltas = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=200))


def at_period_end(t: datetime) -> bool:
    local = t.astimezone(SH)
    return CAL.is_workday(local.date()) and local.timetz().replace(tzinfo=None) in {e for _, e in CAL.periods}


@settings(max_examples=200, deadline=None)
@given(starts, deltas)
def test_between_inverts_add(start, delta):
    end = CAL.add_working_time(start, delta)
    assert CAL.working_time_between(start, end) == delta
    if delta:
        assert CAL.in_working_time(end) or at_period_end(end)
    else:
        assert end == start


@settings(max_examples=200, deadline=None)
@given(starts, deltas, deltas)
def test_add_is_monotonic_and_composes(start, a, b):
    small, large = sorted((a, b))
    assert CAL.add_working_time(start, small) <= CAL.add_working_time(start, large)
    assert CAL.add_working_time(CAL.add_working_time(start, a), b) == CAL.add_working_time(start, a + b)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=2027, max_value=2100))
def test_provisional_year_keeps_the_statutory_days_and_gives_weekend_holidays_back(year):
    from engine import statutory

    cal = WorkCalendar()
    year_days = list(days(date(year, 1, 1), date(year, 12, 31)))
    off = {d for d in year_days if not cal.is_workday(d)}
    assert all(d in off for d in year_days if d.weekday() >= 5)            # no make-up weekend guessed
    assert {date(year, 1, 1), date(year, 5, 1), date(year, 5, 2), *days(date(year, 10, 1), date(year, 10, 3))} <= off
    statutory_days = statutory.days_off(year)
    weekday_off = {d for d in off if d.weekday() < 5}
    assert weekday_off <= statutory_days
    # 13 statutory days a year (1+4+1+2+1+1+3); each that falls on a weekend comes back on a
    # weekday (补假), so 13 weekdays off, or 12 where 中秋 falls on one of the 国庆 days and the
    # two share it (2028, 2031, 2058, 2077, 2085).
    assert len(weekday_off) in (12, 13)


def test_period_times_are_times():
    assert CAL.periods == ((time(9), time(12)), (time(13, 30), time(18)))


def test_docs_examples_run():
    import doctest

    doc = Path(__file__).resolve().parent.parent / "docs" / "working-time.md"
    result = doctest.testfile(str(doc), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 12
