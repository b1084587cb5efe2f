"""Clocks are typed (``engine.codec.Clock``) and stored exactly as before.

A clock's stored dict is hashed into every clock event and compared by replay, so the
typed clock must give back the same dict, byte for byte in canonical JSON: same keys,
same ISO text, a key's absence kept apart from its null, and anything it cannot type
(an unknown key, a time not in UTC form) kept as stored.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.codec import Clock, ClockKind, ClockStatus, ClockStep, StepKind, canonical_json, clocks_of

GOLDEN = Path(__file__).parent / "golden" / "histories" / "events.jsonl"


def _golden_clocks() -> list[dict[str, Any]]:
    out = []
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        data = json.loads(json.loads(line)["data"])
        if "clock" in data:
            out.append(data["clock"])
    return out


def _round_trips(stored: dict[str, Any]) -> Clock:
    clock = Clock.from_stored(stored)
    assert canonical_json(clock.to_stored()) == canonical_json(stored)
    return clock


def test_every_golden_clock_round_trips_byte_for_byte_and_fully_typed() -> None:
    clocks = _golden_clocks()
    assert {c["kind"] for c in clocks} == {"sla", "timer"} and len(clocks) >= 20
    for stored in clocks:
        clock = _round_trips(stored)
        assert clock.raw == ()  # everything the engine writes is typed, nothing kept as text


def test_a_typed_clock_reads_times_steps_and_status_without_parsing_text() -> None:
    stored = {"kind": "sla", "status": "warned", "running": True, "started_at": "2025-10-14T01:00:00+00:00",
              "due": "2025-10-15T01:00:00+00:00", "next": "2025-10-15T01:00:00+00:00", "next_kind": "warn:80",
              "warned": [50], "paused_remaining": None, "provisional": [2026]}
    clock = _round_trips(stored)
    assert clock.kind is ClockKind.SLA and clock.status is ClockStatus.WARNED and clock.running is True
    assert clock.due == datetime(2025, 10, 15, 1, tzinfo=timezone.utc)
    assert clock.next_kind == ClockStep(StepKind.WARN, 80)
    assert clock.warned == (50,) and clock.provisional == (2026,)
    assert clocks_of({"resp": stored}) == {"resp": clock}


def test_an_absent_key_stays_absent_and_a_null_stays_null() -> None:
    without = _round_trips({"kind": "timer", "status": "open", "ended_at": None})
    assert "breached_at" not in without.to_stored() and without.to_stored()["ended_at"] is None


def test_what_cannot_be_typed_exactly_is_kept_as_stored() -> None:
    stored = {"kind": "sla", "status": "paused-by-an-older-engine", "due": "2025-10-15T09:00:00+08:00",
              "next_kind": "ring:3", "warned": None, "running": 1, "future_key": {"x": [1, 2]}}
    clock = _round_trips(stored)
    assert clock.status is None and clock.next_kind is None  # they do not decode
    assert clock.due == datetime(2025, 10, 15, 1, tzinfo=timezone.utc)  # decodes, kept as stored too
    assert dict(clock.raw).keys() == {"status", "due", "next_kind", "warned", "running", "future_key"}
    assert clock.stored("status") == "paused-by-an-older-engine" and clock.stored("goal") is None


_INSTANTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                         timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=8))]))
_TIME_TEXT = st.one_of(st.none(), _INSTANTS.map(lambda t: t.astimezone(timezone.utc).isoformat()),
                       _INSTANTS.map(datetime.isoformat), st.text(max_size=8))
_STEP_TEXT = st.one_of(st.none(), st.sampled_from(["breach", "fire", "judge", "warn", "breach:1"]),
                       st.integers(0, 200).map(lambda n: f"warn:{n}"),
                       st.integers(0, 5).map(lambda n: f"escalate:{n}"))
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=6))
_VALUES: dict[str, Any] = {
    "kind": st.one_of(st.sampled_from(["sla", "timer", "quota"]), _SCALAR),
    "status": st.one_of(st.sampled_from([s.value for s in ClockStatus]), _SCALAR),
    "running": _SCALAR, "next_kind": _STEP_TEXT,
    **{k: _TIME_TEXT for k in ("started_at", "due", "next", "ended_at", "breached_at", "acknowledged_at",
                               "period_start")},
    **{k: st.one_of(st.none(), st.text(max_size=8)) for k in ("goal", "goal_kind", "assignee",
                                                                "acknowledged_by")},
    **{k: st.one_of(st.none(), st.lists(st.one_of(st.integers(0, 3000), st.booleans()), max_size=3))
       for k in ("warned", "provisional")},
    **{k: _SCALAR for k in ("paused_remaining", "fired", "count", "required", "met", "missed", "escalated")},
    "unknown_key": _SCALAR,
}


@given(st.fixed_dictionaries({}, optional=_VALUES))
def test_any_stored_clock_round_trips_byte_for_byte(stored: dict[str, Any]) -> None:
    _round_trips(stored)
