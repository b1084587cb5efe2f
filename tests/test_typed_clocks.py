"""An instance's clocks are typed on both sides: ``Instance.clocks`` holds
``engine.codec.Clock`` values (datetimes, StrEnums, ClockSteps), decoded once where a row
is loaded or a clock event folded, and written back in the stored form that was hashed.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from engine.codec import Clock, ClockKind, ClockStatus, ClockStep, StepKind, canonical_json, clocks_to_json

from tests.conftest import SHANGHAI

COMPLAINT = {"unit": "5-0502", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}


def _row_clocks(db_url: str, iid: int) -> str:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as con:
        return con.execute("SELECT clocks FROM instances WHERE id = ?", (iid,)).fetchone()[0]


def test_the_engine_gives_an_instances_clocks_as_typed_clocks_with_datetimes(engine: Any) -> None:
    started = engine.start("complaint", "liu_fang", COMPLAINT)
    reply = engine.show(started.id).clocks["reply"]
    assert isinstance(reply, Clock) and reply == started.clocks["reply"]
    assert reply.kind is ClockKind.SLA and reply.status is ClockStatus.OPEN and reply.running is True
    assert reply.started_at == datetime(2025, 9, 30, 9, 0, tzinfo=SHANGHAI)
    assert reply.due == datetime(2025, 9, 30, 18, 0, tzinfo=SHANGHAI)  # CMP-3: 1 workday, to its end
    assert reply.due.tzinfo is not None and reply.next_kind == ClockStep(StepKind.WARN, 50)  # type: ignore[union-attr]
    assert reply.warned == () and reply.goal == "1 workday"


def test_a_fired_warning_moves_the_typed_clock_on(engine: Any, clock: Any) -> None:
    started = engine.start("complaint", "liu_fang", COMPLAINT)
    first = started.clocks["reply"].next
    clock.set(first)
    assert engine.tick(clock.now())
    reply = engine.show(started.id).clocks["reply"]
    assert reply.status is ClockStatus.WARNED and reply.warned == (50,)
    assert reply.next_kind == ClockStep(StepKind.WARN, 80) and reply.next > first


def test_the_typed_clocks_written_are_the_stored_row_byte_for_byte(engine: Any, db_url: str, clock: Any) -> None:
    started = engine.start("complaint", "liu_fang", COMPLAINT)
    assert clocks_to_json(started.clocks) == _row_clocks(db_url, started.id)
    clock.advance(timedelta(days=12))
    engine.tick(clock.now())
    shown = engine.show(started.id)
    assert shown.clocks["reply"].status is ClockStatus.BREACHED
    assert clocks_to_json(shown.clocks) == _row_clocks(db_url, started.id)
    assert engine.replay(started.id).ok


def test_a_clock_event_carries_the_stored_form_that_is_hashed(engine: Any) -> None:
    started = engine.start("complaint", "liu_fang", COMPLAINT)
    row = next(r for r in engine.history(started.id) if r.type == "SlaStarted")
    payload = json.loads(row.data_json)["clock"]
    assert payload == started.clocks["reply"].to_stored()
    assert payload["due"] == "2025-09-30T10:00:00+00:00" and payload["next_kind"] == "warn:50"


def test_a_typed_clock_cannot_be_changed_in_place_and_refuses_unknown_fields() -> None:
    clock = Clock.of(kind=ClockKind.TIMER, status=ClockStatus.OPEN, next=datetime(2025, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(AttributeError):
        clock.status = ClockStatus.FIRED  # type: ignore[misc]
    with pytest.raises(TypeError, match="Clock has no field 'colour'"):
        clock.with_(colour="red")
    fired = clock.with_(status=ClockStatus.FIRED, next=None)
    assert clock.status is ClockStatus.OPEN and fired.status is ClockStatus.FIRED and fired.next is None
    assert canonical_json(fired.to_stored()) == '{"kind":"timer","next":null,"status":"fired"}'
    assert fired.without("next").keys == {"kind", "status"}
