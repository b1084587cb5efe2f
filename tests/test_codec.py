"""The codec (engine/codec.py): what is hashed and stored never changes its bytes.

The golden histories (tests/golden/histories/events.jsonl, written by
``tools/golden_histories.py`` with the encoder before the codec existed) hold every kind of
event a complaint's and a dunning case's life writes, as stored: each must re-encode from
its decoded data to the same stored text and the same hash, or every existing chain would
stop verifying.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import codec
from engine.codec import ClockStep, StepKind
from engine.core.model import GENESIS_HASH

GOLDEN = Path(__file__).parent / "golden" / "histories" / "events.jsonl"
STAMP = "%Y-%m-%d %H:%M:%S.%f"


def _golden() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]


def _instant(text: str) -> datetime:
    return datetime.strptime(text, STAMP).replace(tzinfo=timezone.utc)


def _reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def test_golden_histories_hold_every_event_kind_of_a_complaint_and_a_dunning_case() -> None:
    kinds = {e["type"] for e in _golden()}
    assert kinds >= {"InstanceStarted", "ActionTaken", "DataRecorded", "Assigned", "NotificationQueued",
                     "ChildSpawned", "SlaStarted", "SlaWarned", "SlaBreached", "SlaStopped", "SlaReset",
                     "TimerArmed", "TimerFired"}


@pytest.mark.parametrize("event", _golden(), ids=lambda e: f"{e['instance_id']}-{e['seq']}-{e['type']}")
def test_every_golden_event_encodes_once_to_its_stored_text_and_hash(event: dict[str, Any]) -> None:
    data = json.loads(event["data"])
    stored = codec.encode_event(event["instance_id"], event["seq"], event["type"], event["actor"], event["role"],
                                _instant(event["occurred_at"]), _instant(event["recorded_at"]), data,
                                event["prev_hash"])
    assert stored == (event["data"], event["hash"])
    assert codec.canonical_json(data) == _reference(data)


def test_golden_chains_link_from_genesis() -> None:
    prev: dict[int, str] = {}
    for e in _golden():
        assert e["prev_hash"] == prev.get(e["instance_id"], GENESIS_HASH)
        prev[e["instance_id"]] = e["hash"]


_HASHED_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))


@given(instance_id=st.integers(min_value=-2**70, max_value=2**70), seq=st.integers(min_value=0, max_value=2**70),
       type_=_HASHED_TEXT, actor=_HASHED_TEXT, role=st.none() | _HASHED_TEXT, data_json=_HASHED_TEXT,
       prev=_HASHED_TEXT)
def test_the_hash_body_is_the_standard_encoders_bytes_for_any_field_values(
        instance_id: int, seq: int, type_: str, actor: str, role: Any, data_json: str, prev: str) -> None:
    """orjson writes the hash body only where its bytes are the standard encoder's (integers
    beyond 64 bits go to the standard encoder): same hash for any values."""
    import hashlib

    at = datetime(2025, 10, 14, 1, 5, 20, 123, tzinfo=timezone.utc)
    body = _reference([instance_id, seq, type_, actor, role, codec.iso_utc(at), codec.iso_utc(at), data_json, prev])
    expected = hashlib.sha256(body.encode("utf-8")).hexdigest()
    assert codec.event_hash(instance_id, seq, type_, actor, role, at, at, data_json, prev) == expected


@pytest.mark.parametrize("text, step", [
    ("warn:80", ClockStep(StepKind.WARN, 80)), ("escalate:0", ClockStep(StepKind.ESCALATE, 0)),
    ("breach", ClockStep(StepKind.BREACH)), ("fire", ClockStep(StepKind.FIRE)), ("judge", ClockStep(StepKind.JUDGE)),
])
def test_a_clock_step_reads_and_writes_its_stored_text(text: str, step: ClockStep) -> None:
    assert ClockStep.parse(text) == step
    assert step.text == text and type(step.text) is str


@pytest.mark.parametrize("text", ["warn", "warn:08", "warn:x", "breach:1", "fire:", "snooze", ""])
def test_a_stored_next_kind_that_names_no_step_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        ClockStep.parse(text)


def test_clock_steps_in_the_golden_histories_are_all_typed_steps() -> None:
    """Every ``next_kind`` ever written in a clock reads as a typed step and back to the same text."""
    seen = set()
    for e in _golden():
        for clock in [json.loads(e["data"]).get("clock") or {}]:
            if clock.get("next_kind"):
                seen.add(clock["next_kind"])
                assert ClockStep.parse(clock["next_kind"]).text == clock["next_kind"]
    assert {"breach", "fire"} <= seen and any(s.startswith("warn:") for s in seen)
