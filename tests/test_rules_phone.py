"""PHN — incoming calls (procedures/phone_call.yaml), one scenario per rule, on the real calendar."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine.errors import ActionNotAllowed, FormInvalid
from engine.runtime.config import Settings, build_engine
from tests.conftest import ROOT, SHANGHAI

RING = datetime(2025, 9, 30, 10, 0, 0, tzinfo=SHANGHAI)   # a Tuesday, working hours
CALLER = "13912345678"


def ring(engine, at: datetime = RING, **extra):  # type: ignore[no-untyped-def]
    return engine.start("phone_call", "liu_fang", {"ring_started_at": at.isoformat(), "caller": CALLER, **extra},
                        at=at)


def sla(engine, iid: int) -> dict:  # type: ignore[no-untyped-def]
    return next(d for d in engine.deadlines(iid) if d["name"] == "answer")


def notices(engine, iid: int) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(e.data_json) for e in engine.history(iid) if e.type == "NotificationQueued"]


def answer(engine, iid: int, seconds: float, staff: str = "zhou_min", **data):  # type: ignore[no-untyped-def]
    return engine.advance(iid, "answer", staff, {"greeted": True, **data}, at=RING + timedelta(seconds=seconds))


def test_phn1_call_answered_within_three_rings_meets_the_sla(engine) -> None:  # type: ignore[no-untyped-def]
    call = ring(engine)
    assert sla(engine, call.id) == {"name": "answer", "kind": "sla", "status": "open",
                                    "due": "2025-09-30T10:00:15+08:00"}   # 3 rings x 5 s
    answered = answer(engine, call.id, 12)
    assert answered.state == "in_call" and answered.assignee == "zhou_min"
    assert answered.data["answered_at"] == "2025-09-30T10:00:12+08:00"
    assert sla(engine, call.id)["status"] == "met"
    assert notices(engine, call.id) == []
    assert engine.replay(call.id).ok


def test_phn1_ring_length_is_a_site_setting(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(ROOT / "procedures", tmp_path / "procedures")
    shutil.copytree(ROOT / "forms", tmp_path / "forms")
    path = tmp_path / "procedures" / "phone_call.yaml"
    text = path.read_text(encoding="utf-8")
    assert "units: {ring: 5s}" in text
    path.write_text(text.replace("units: {ring: 5s}", "units: {ring: 6s}"), encoding="utf-8")
    site = build_engine(Settings(f"sqlite:///{tmp_path / 'site.db'}", tmp_path / "procedures",
                                 ROOT / "org" / "demo.yaml"), clock)
    call = ring(site)
    assert sla(site, call.id)["due"] == "2025-09-30T10:00:18+08:00"   # 3 rings x 6 s
    answer(site, call.id, 17)
    assert sla(site, call.id)["status"] == "met"


def test_phn2_unanswered_call_alerts_the_other_seats_and_the_supervisor_at_once(engine) -> None:  # type: ignore[no-untyped-def]
    call = ring(engine)
    assert engine.tick(RING + timedelta(seconds=14)) == []
    fired = engine.tick(RING + timedelta(seconds=16))
    assert [(f.instance_id, f.name, f.kind) for f in fired] == [(call.id, "answer", "breached")]
    sent = notices(engine, call.id)
    assert sorted(r for n in sent for r in n["recipients"]) == ["li_qiang", "liu_fang", "zhou_min"]
    assert all(e.occurred_at == RING + timedelta(seconds=15)
               for e in engine.history(call.id) if e.type == "NotificationQueued")   # at the third ring
    # the other seat answers; the violation stays on record
    answered = answer(engine, call.id, 25)
    assert answered.data["over_ring_limit"] is True
    assert sla(engine, call.id)["status"] == "breached"


def test_phn2_answer_after_third_ring_is_a_breach(engine) -> None:  # type: ignore[no-untyped-def]
    call = ring(engine)
    answer(engine, call.id, 16)          # no sweep ran: judged on the answer's occurred_at
    assert sla(engine, call.id)["status"] == "breached"
    types = [e.type for e in engine.history(call.id)]
    assert types.index("SlaBreached") < types.index("ActionTaken")
    assert engine.replay(call.id).ok


def test_phn2_caller_hanging_up_after_the_limit_is_a_missed_call_to_return(engine) -> None:  # type: ignore[no-untyped-def]
    early = ring(engine)
    engine.advance(early.id, "hang_up", "liu_fang", {"rings": 2}, at=RING + timedelta(seconds=10))
    assert sla(engine, early.id)["status"] == "met"    # the caller gave up before ring 3
    late = ring(engine, RING + timedelta(minutes=5))
    missed = engine.advance(late.id, "hang_up", "liu_fang", {}, at=RING + timedelta(minutes=5, seconds=40))
    assert missed.state == "missed" and missed.assignee_role == "front_desk"
    assert sla(engine, late.id)["status"] == "breached"
    back = engine.advance(late.id, "call_back", "zhou_min", at=RING + timedelta(minutes=7))
    assert back.state == "in_call" and back.assignee == "zhou_min"


def test_phn3_answer_with_greeting_and_record_caller_name_contact_and_matter(engine) -> None:  # type: ignore[no-untyped-def]
    call = ring(engine)
    with pytest.raises(ActionNotAllowed, match="PHN-3"):
        engine.advance(call.id, "answer", "zhou_min", {"greeted": False}, at=RING + timedelta(seconds=5))
    with pytest.raises(FormInvalid, match="greeted"):
        engine.advance(call.id, "answer", "zhou_min", {}, at=RING + timedelta(seconds=5))
    answer(engine, call.id, 6)
    with pytest.raises(FormInvalid) as missing:
        engine.advance(call.id, "classify", "zhou_min", {"category": "enquiry", "answer_given": "周六照常办公"},
                       at=RING + timedelta(minutes=2))
    assert {e.field for e in missing.value.errors} == {"caller_name", "contact", "matter"}
    done = engine.advance(call.id, "classify", "zhou_min",
                          {"caller_name": "王先生", "contact": CALLER, "matter": "周六是否办公",
                           "category": "enquiry", "answer_given": "周六照常办公"}, at=RING + timedelta(minutes=2))
    assert done.data["caller_name"] == "王先生" and done.data["contact"] == CALLER
    assert done.data["matter"] == "周六是否办公"


def record(engine, iid: int, **data):  # type: ignore[no-untyped-def]
    base = {"caller_name": "王先生", "contact": CALLER, "matter": "事项"}
    return engine.advance(iid, "classify", "zhou_min", {**base, **data}, at=RING + timedelta(minutes=3))


def test_phn4_enquiry_is_answered_and_closed_on_the_spot(engine) -> None:  # type: ignore[no-untyped-def]
    call = ring(engine)
    answer(engine, call.id, 5)
    with pytest.raises(FormInvalid, match="answer_given"):
        record(engine, call.id, category="enquiry")
    done = record(engine, call.id, category="enquiry", answer_given="物业费可在前台或微信缴纳")
    assert done.state == "closed" and done.status == "completed" and done.children == ()


def test_phn4_complaint_starts_the_complaint_procedure(engine) -> None:  # type: ignore[no-untyped-def]
    call = ring(engine)
    answer(engine, call.id, 5)
    with pytest.raises(FormInvalid, match="unit"):
        record(engine, call.id, category="complaint", matter="楼上漏水")
    done = record(engine, call.id, category="complaint", unit="3-1201", matter="楼上漏水")
    assert done.state == "closed" and len(done.children) == 1
    child = engine.show(done.children[0])
    assert child.procedure == "complaint" and child.parent_id == call.id
    assert child.data["channel"] == "phone" and child.data["content"] == "楼上漏水"
    assert child.data["unit"] == "3-1201" and child.data["owner_name"] == "王先生"
    assert child.assignee == "chen_jing"          # the complaint flow takes over (steward of building 3)


def test_phn4_repair_request_starts_the_repair_procedure(engine) -> None:  # type: ignore[no-untyped-def]
    call = ring(engine)
    answer(engine, call.id, 5)
    with pytest.raises(FormInvalid, match="unit"):
        record(engine, call.id, category="repair", matter="厨房水管漏水")
    done = record(engine, call.id, category="repair", unit="5-0302", matter="厨房水管漏水")
    assert done.state == "closed" and len(done.children) == 1
    child = engine.show(done.children[0])
    assert child.procedure == "repair" and child.parent_id == call.id
    assert child.data["content"] == "厨房水管漏水" and child.data["channel"] == "phone"
    assert child.data["receiver"] == "zhou_min"          # the answering staff received it (REP-1)


def test_phn4_other_request_is_recorded_and_routed(engine) -> None:  # type: ignore[no-untyped-def]
    call = ring(engine)
    answer(engine, call.id, 5)
    with pytest.raises(FormInvalid, match="routed_to"):
        record(engine, call.id, category="other", matter="快递代收")
    done = record(engine, call.id, category="other", matter="小区门口车辆乱停", routed_to="security")
    assert done.state == "closed" and done.data["routed_to"] == "security"
    assert notices(engine, call.id)[-1]["recipients"] == ["xu_bin"]


def test_phn5_serving_a_visitor_does_not_excuse_a_late_answer(engine) -> None:  # type: ignore[no-untyped-def]
    call = ring(engine)
    busy = engine.advance(call.id, "busy_with_visitor", "liu_fang", at=RING + timedelta(seconds=3))
    assert busy.state == "ringing" and busy.data["serving_visitor"] is True
    assert sla(engine, call.id)["status"] == "open"           # neither stopped nor paused
    with pytest.raises(FormInvalid, match="apologised_to_visitor"):
        answer(engine, call.id, 20, staff="liu_fang", serving_visitor=True)
    answer(engine, call.id, 20, staff="liu_fang", serving_visitor=True, apologised_to_visitor=True)
    assert sla(engine, call.id)["status"] == "breached"


def test_phn6_imported_record_is_judged_on_its_own_times(engine, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(datetime(2025, 10, 9, 9, 0, tzinfo=SHANGHAI))        # imported nine days later
    rang = datetime(2025, 9, 30, 16, 0, 0, tzinfo=SHANGHAI)
    prompt = ring(engine, rang, imported=True, call_id="A1")
    engine.advance(prompt.id, "answer", "li_qiang", {"rings": 2}, at=rang + timedelta(seconds=9))
    slow = ring(engine, rang + timedelta(minutes=1), imported=True, call_id="A2")
    engine.advance(slow.id, "answer", "li_qiang", {"rings": 6}, at=rang + timedelta(minutes=1, seconds=30))
    assert sla(engine, prompt.id)["status"] == "met"
    assert sla(engine, slow.id)["status"] == "breached"
    breach = next(e for e in engine.history(slow.id) if e.type == "SlaBreached")
    assert breach.occurred_at == rang + timedelta(minutes=1, seconds=15)   # the record's time, not the import's
    assert notices(engine, slow.id) == []                               # no live alert for an old call
    filed = engine.advance(slow.id, "file_record", "li_qiang", at=rang + timedelta(minutes=2))
    assert filed.state == "closed"
    live = ring(engine, datetime(2025, 10, 9, 9, 0, tzinfo=SHANGHAI))
    answer_live = engine.advance(live.id, "answer", "zhou_min", {"greeted": True},
                                 at=datetime(2025, 10, 9, 9, 0, 5, tzinfo=SHANGHAI))
    with pytest.raises(ActionNotAllowed, match="PHN-3"):
        engine.advance(answer_live.id, "file_record", "zhou_min", at=datetime(2025, 10, 9, 9, 1, tzinfo=SHANGHAI))
