"""Recurring timers: the 16th, the 30th-or-last, every workday at 10:00, every 15 minutes, cron."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from engine.calendar import WorkCalendar
from engine.schedules import Cron, DailyAt, Every, MonthlyOn, parse_schedule

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
# Illustrative 2028 definition (no notice exists yet): weekdays work, weekends off.
CAL_2028 = WorkCalendar(years={2027: {}, 2028: {}})


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def occurrences(spec, start: datetime, count: int, calendar: WorkCalendar = CAL, anchor=None) -> list[datetime]:
    schedule, found, t = parse_schedule(spec), [], start
    for _ in range(count):
        t = schedule.next_after(t, calendar, anchor)
        found.append(t)
    return found


# -- monthly (rule DUN-10) ----------------------------------------------------------------


def test_dun10_first_notice_on_the_16th():
    assert occurrences({"day": 16, "at": "09:00"}, at(2026, 1, 16, 9), 3) == [
        at(2026, 2, 16, 9), at(2026, 3, 16, 9), at(2026, 4, 16, 9)
    ]
    assert parse_schedule("monthly on day 16").next_after(at(2026, 1, 15, 23), CAL) == at(2026, 1, 16)


def test_dun10_final_notice_on_the_30th_or_last_day():
    expected = [at(2026, 1, 30), at(2026, 2, 28), at(2026, 3, 30), at(2026, 4, 30)]
    assert occurrences({"day": 30, "shorter_month": "last"}, at(2026, 1, 1), 4) == expected
    assert occurrences("monthly on day 30 or last day", at(2026, 1, 1), 4) == expected
    assert occurrences("Monthly on day 30, or the last day of a shorter month", at(2026, 1, 1), 4) == expected


def test_30th_or_last_in_a_leap_february_of_a_defined_year():
    assert occurrences({"day": 30, "shorter_month": "last"}, at(2028, 1, 31), 2, CAL_2028) == [
        at(2028, 2, 29), at(2028, 3, 30)
    ]


def test_plain_cron_day_30_skips_february_but_our_rule_does_not():
    after = at(2026, 1, 31)
    assert croniter("0 0 30 * *", after).get_next(datetime) == at(2026, 3, 30)
    assert parse_schedule("cron 0 0 30 * *").next_after(after, CAL) == at(2026, 3, 30)
    assert parse_schedule({"day": 30, "shorter_month": "skip"}).next_after(after, CAL) == at(2026, 3, 30)
    assert parse_schedule({"day": 30, "shorter_month": "last"}).next_after(after, CAL) == at(2026, 2, 28)


def test_last_day_of_month():
    assert occurrences({"day": "last"}, at(2026, 1, 31), 2) == [at(2026, 2, 28), at(2026, 3, 31)]
    assert parse_schedule("monthly on the last day at 17:00").next_after(at(2026, 4, 1), CAL) == at(2026, 4, 30, 17)


def test_monthly_day_beyond_28_must_say_what_shorter_months_do():
    with pytest.raises(ValueError, match="shorter months"):
        parse_schedule({"day": 30})
    with pytest.raises(ValueError, match="or last day"):
        parse_schedule("monthly on day 31")
    with pytest.raises(ValueError, match="1-31"):
        parse_schedule({"day": 32, "shorter_month": "last"})
    with pytest.raises(ValueError, match="last or skip"):
        parse_schedule({"day": 30, "shorter_month": "first"})


# -- every workday at HH:MM (rules DUN-5, DUN-6) ---------------------------------------------


def test_every_workday_at_10_across_national_day():
    assert occurrences("every workday at 10:00", at(2025, 9, 26, 10), 4) == [
        at(2025, 9, 28, 10),  # make-up Sunday
        at(2025, 9, 29, 10),
        at(2025, 9, 30, 10),
        at(2025, 10, 9, 10),  # 1-8 October off
    ]
    assert occurrences({"every": "workday", "at": "10:00"}, at(2025, 10, 9, 10), 2) == [
        at(2025, 10, 10, 10), at(2025, 10, 11, 10)  # make-up Saturday
    ]


def test_every_workday_same_day_before_time_and_other_zones():
    schedule = parse_schedule("every workday at 10:00")
    assert schedule.next_after(at(2025, 9, 30, 9, 59), CAL) == at(2025, 9, 30, 10)
    utc = datetime(2025, 9, 30, 1, tzinfo=timezone.utc)  # 09:00 in Shanghai
    assert schedule.next_after(utc, CAL) == at(2025, 9, 30, 10)
    assert schedule.next_after(utc, CAL).tzinfo == SH


def test_every_day_at_ignores_the_working_calendar():
    assert occurrences("every day at 08:30", at(2025, 9, 30, 9), 2) == [at(2025, 10, 1, 8, 30), at(2025, 10, 2, 8, 30)]
    assert parse_schedule("daily at 08:30") == DailyAt(at(2025, 1, 1, 8, 30).time(), False, "daily at 08:30")


def test_times_must_be_quoted_strings():
    with pytest.raises(ValueError, match="540"):
        parse_schedule({"every": "workday", "at": 540})
    with pytest.raises(ValueError, match="HH:MM"):
        parse_schedule("every workday at ten")
    with pytest.raises(ValueError, match="at what time"):
        parse_schedule("every workday")
    with pytest.raises(ValueError, match="needs at"):
        parse_schedule({"every": "workday"})


# -- every <duration> (rule MTG-4: tea every 15 minutes) -------------------------------------


def test_every_15_minutes_from_an_anchor():
    started = at(2025, 10, 1, 14, 0)
    assert occurrences("every 15 minutes", started, 3, anchor=started) == [
        at(2025, 10, 1, 14, 15), at(2025, 10, 1, 14, 30), at(2025, 10, 1, 14, 45)
    ]
    late = parse_schedule({"every": "15m"}).next_after(at(2025, 10, 1, 14, 52), CAL, anchor=started)
    assert late == at(2025, 10, 1, 15, 0)  # no drift when the scheduler was late
    assert parse_schedule("every 15 minutes").next_after(started, CAL) == started + timedelta(minutes=15)


def test_every_working_hours_skips_the_night():
    anchor = at(2025, 9, 30, 17)
    schedule = parse_schedule("every 2 working hours")
    assert isinstance(schedule, Every)
    assert schedule.next_after(anchor, CAL, anchor) == at(2025, 10, 9, 10)
    assert schedule.next_after(at(2025, 10, 9, 10), CAL, anchor) == at(2025, 10, 9, 12)
    assert schedule.next_after(at(2025, 10, 9, 12), CAL, anchor) == at(2025, 10, 9, 15, 30)


def test_every_refusals():
    for bad, reason in [("every 0 minutes", "longer than zero"), ("every 1 workday", "every workday at"),
                        ("every fortnight", "cannot read"), ("every 2 rings", "unknown unit")]:
        with pytest.raises(ValueError, match=reason):
            parse_schedule(bad)
    assert parse_schedule("every 2 rings", {"ring": "5s"}).step.amount == timedelta(seconds=10)


# -- cron and malformed specs ------------------------------------------------------------------


def test_cron_for_everything_else():
    schedule = parse_schedule({"cron": "0 9 * * 1-5"})
    assert isinstance(schedule, Cron)
    assert schedule.next_after(at(2025, 10, 3, 9), CAL) == at(2025, 10, 6, 9)  # plain weekdays, no holidays
    with pytest.raises(ValueError, match="cron expression"):
        parse_schedule("cron 0 9 * *")
    with pytest.raises(ValueError, match="cron expression"):
        parse_schedule({"cron": "every morning"})


def test_malformed_specs_name_the_problem():
    with pytest.raises(ValueError, match="accepted"):
        parse_schedule("sometimes")
    with pytest.raises(ValueError, match="do not fit one form"):
        parse_schedule({"day": 16, "cron": "0 0 16 * *"})
    with pytest.raises(ValueError, match="do not fit one form"):
        parse_schedule({"weekday": "monday"})
    with pytest.raises(ValueError, match="not every <duration>"):
        parse_schedule({"every": "15m", "at": "10:00"})
    with pytest.raises(ValueError, match="text or a mapping"):
        parse_schedule(15)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time zone"):
        parse_schedule("every workday at 10:00").next_after(datetime(2025, 9, 30), CAL)


def test_schedules_run_on_into_a_provisional_year():
    # Thursday 2026-12-31 11:00: Friday 2027-01-01 is 元旦 by the statutory rules.
    assert parse_schedule("every workday at 10:00").next_after(at(2026, 12, 31, 11), CAL) == at(2027, 1, 4, 10)
    assert MonthlyOn(16, "last", at(2026, 1, 1).time(), "x").date_in(2027, 2) == date(2027, 2, 16)


# -- weekly rules, last workdays and cron on workdays (DUN-6) -------------------------------

def fires(spec: object, start: datetime, n: int = 4) -> list[str]:
    schedule, t, out = parse_schedule(spec), start, []  # type: ignore[arg-type]
    for _ in range(n):
        t = schedule.next_after(t, CAL)
        out.append(t.strftime("%m-%d %H:%M"))
    return out


def test_every_friday_fires_on_fridays_and_on_workdays_skips_the_national_day_friday():
    start = at(2025, 9, 22)
    assert fires("every friday at 16:00", start) == ["09-26 16:00", "10-03 16:00", "10-10 16:00", "10-17 16:00"]
    assert fires("every Friday at 16:00 on workdays", start) == ["09-26 16:00", "10-10 16:00", "10-17 16:00",
                                                                 "10-24 16:00"]
    assert fires({"every": "friday", "at": "16:00", "on_workdays": True}, start) == \
        fires("every friday at 16:00 on workdays", start)
    assert fires("every monday and thursday at 10:00", start, 3) == ["09-22 10:00", "09-25 10:00", "09-29 10:00"]


def test_dun6_weekly_on_the_last_workday_follows_holidays_and_make_up_days():
    # Week of 09-22: make-up Sunday 09-28; week of 09-29: Tuesday before National Day;
    # week of 10-06: make-up Saturday 10-11; then ordinary Fridays.
    assert fires("weekly on the last workday at 16:00", at(2025, 9, 22)) == [
        "09-28 16:00", "09-30 16:00", "10-11 16:00", "10-17 16:00"]
    assert fires({"last_workday_of": "week", "at": "16:00"}, at(2025, 9, 22), 1) == ["09-28 16:00"]


def test_monthly_on_the_last_workday():
    # 2026-02-28 is a make-up Saturday; 2025-05-31 is a Saturday of the Dragon Boat holiday.
    assert fires("monthly on the last workday at 17:00", at(2026, 1, 31, 18), 1) == ["02-28 17:00"]
    assert fires("monthly on the last workday at 17:00", at(2025, 5, 1), 1) == ["05-30 17:00"]


def test_cron_on_workdays_skips_holidays_plain_cron_does_not():
    assert fires("cron 0 16 * * 5", at(2025, 9, 27), 1) == ["10-03 16:00"]
    assert fires("cron 0 16 * * 5 on workdays", at(2025, 9, 27), 1) == ["10-10 16:00"]
    assert fires({"cron": "0 16 * * 5", "on_workdays": True}, at(2025, 9, 27), 1) == ["10-10 16:00"]


def test_new_forms_refuse_what_they_cannot_read():
    with pytest.raises(ValueError, match="needs at"):
        parse_schedule({"every": "friday"})
    with pytest.raises(ValueError, match="on_workdays goes with"):
        parse_schedule({"every": "15 minutes", "on_workdays": True})
    with pytest.raises(ValueError, match="last_workday_of: week or month"):
        parse_schedule({"last_workday_of": "year", "at": "16:00"})
    with pytest.raises(ValueError, match="did you mean 'friday'"):
        parse_schedule("every fryday at 16:00")
