"""Durations written in procedure YAML: every accepted form, the kinds, and the refusals."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.calendar import WorkCalendar
from engine.durations import Duration, parse_duration

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


@pytest.mark.parametrize(
    ("text", "kind", "amount"),
    [
        ("15s", "wall", timedelta(seconds=15)),
        ("30m", "wall", timedelta(minutes=30)),
        ("2h", "wall", timedelta(hours=2)),
        ("7 days", "wall", timedelta(days=7)),
        ("1 day", "wall", timedelta(days=1)),
        ("90 seconds", "wall", timedelta(seconds=90)),
        ("1 week", "wall", timedelta(days=7)),
        ("10 mins", "wall", timedelta(minutes=10)),
        ("1h 30m", "wall", timedelta(minutes=90)),
        ("1.5 hours", "wall", timedelta(minutes=90)),
        ("  2 Hours ", "wall", timedelta(hours=2)),
        ("4 working hours", "working", timedelta(hours=4)),
        ("30 working minutes", "working", timedelta(minutes=30)),
        ("1 working hour 30 working minutes", "working", timedelta(minutes=90)),
        ("1 workday", "workdays", 1),
        ("3 workdays", "workdays", 3),
        ("2 working days", "workdays", 2),
        ("0 minutes", "wall", timedelta(0)),
    ],
)
def test_accepted_forms(text, kind, amount):
    duration = parse_duration(text)
    assert (duration.kind, duration.amount, duration.text) == (kind, amount, text.strip())


def test_procedure_units_singular_and_plural():  # rule PHN-1: answered within 3 rings
    units = {"ring": "5s", "shift": "4 working hours"}
    assert parse_duration("3 rings", units) == Duration("wall", timedelta(seconds=15), "3 rings")
    assert parse_duration("1 ring", units).amount == timedelta(seconds=5)
    assert parse_duration("2 shifts", units) == Duration("working", timedelta(hours=8), "2 shifts")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("soon", "cannot read 'soon'"),
        ("5ms", "unknown unit 'ms'"),
        ("2 fortnights", "unknown unit 'fortnights'"),
        ("-5m", "never negative"),
        ("1 workday 2h", "mixes"),
        ("1.5 workdays", "whole number"),
        ("2h 30 working minutes", "mixes"),
    ],
)
def test_refusals_say_why_and_what_is_accepted(text, reason):
    with pytest.raises(ValueError, match=reason) as err:
        parse_duration(text)
    assert "Accepted:" in str(err.value) and "4 working hours" in str(err.value)


def test_refusal_lists_procedure_units():
    with pytest.raises(ValueError, match="procedure units: ring"):
        parse_duration("3 bells", {"ring": "5s"})


def test_bad_procedure_unit_definitions():
    with pytest.raises(ValueError, match="hide the built-in"):
        parse_duration("1 hour", {"hours": "5s"})
    with pytest.raises(ValueError, match="cannot read"):
        parse_duration("1 ring", {"ring": "loud"})
    with pytest.raises(ValueError, match="not 15"):
        parse_duration(15)  # type: ignore[arg-type]


def test_add_to_each_kind():
    received = datetime(2025, 9, 30, 17, 55, tzinfo=SH)
    assert parse_duration("15m").add_to(received, CAL) == datetime(2025, 9, 30, 18, 10, tzinfo=SH)
    assert parse_duration("10 working minutes").add_to(received, CAL) == datetime(2025, 10, 9, 9, 5, tzinfo=SH)
    one = parse_duration("1 workday")
    assert one.add_to(received, CAL) == datetime(2025, 10, 9, 18, tzinfo=SH)
    assert one.add_to(received, CAL, "working_hours") == datetime(2025, 10, 9, 17, 55, tzinfo=SH)


def test_wall_add_converts_to_calendar_zone_and_needs_aware_input():
    utc = datetime(2025, 9, 30, 1, tzinfo=timezone.utc)
    result = parse_duration("1h").add_to(utc, CAL)
    assert result == datetime(2025, 9, 30, 10, tzinfo=SH) and result.tzinfo == SH
    assert parse_duration("1h").add_to(utc, None).tzinfo == timezone.utc
    with pytest.raises(ValueError, match="time zone"):
        parse_duration("1h").add_to(datetime(2025, 9, 30, 1), CAL)
    with pytest.raises(ValueError, match="calendar"):
        parse_duration("1 workday").add_to(utc, None)


def test_measure():
    a = datetime(2025, 9, 30, 17, tzinfo=SH)
    b = datetime(2025, 10, 9, 10, tzinfo=SH)
    assert parse_duration("1h").measure(a, b, CAL) == b - a
    assert parse_duration("4 working hours").measure(a, b, CAL) == timedelta(hours=2)
    assert parse_duration("1 workday").measure(a, b, CAL) == timedelta(hours=2)
