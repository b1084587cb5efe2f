"""REN — renovation (procedures/renovation.yaml), one scenario per rule, on the real calendar.

The works in these scenarios run over National Day 2025: 1-8 October are days off, and
Sunday 28 September and Saturday 11 October are make-up workdays (调休), so the daily
patrol check skips the holiday and runs on those two weekend days.
"""
from __future__ import annotations

from datetime import datetime

import pytest

from engine.errors import ActionNotAllowed, FormInvalid
from engine.timeskip import skip_to
from tests._rules import notices
from tests.conftest import SHANGHAI

APPLICATION = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "plan_summary": "客厅吊顶、卫生间翻新",
               "plan_drawings": "doc:plan-3-1201", "planned_start": "2025-09-26", "planned_end": "2025-11-30"}
BRIEFING = {"rules_explained": True, "noise_hours_explained": True, "owner_acknowledgement": "sig:wang"}
ITEMS = ("structure_intact", "use_unchanged", "waterproofing_intact", "floor_load_ok", "light_partitions",
         "public_areas_free", "ac_units_placed", "no_awnings", "fireproof_materials", "facade_unchanged")
ALL_PASS = {"plan_checks": {k: {"result": "pass"} for k in ITEMS}}
CONTRACTOR = {"contractor_name": "美家装饰", "contractor_licence": "doc:licence", "contractor_qualification": "doc:q",
              "site_manager": "刘工", "site_manager_phone": "13700000000", "documents_complete": True}
AGREEMENT = {"agreement_ref": "doc:agreement", "owner_signature": "sig:wang", "contractor_signature": "sig:meijia",
             "deposit": "2000.00"}
PASSES = {"worker_count": 4, "worker_register": "doc:workers", "pass_numbers": "ZX-101..ZX-104",
          "passes_valid_until": "2025-11-30"}
PATROL = {"patrol_findings": "正常施工"}


def t(day: str, hm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=SHANGHAI)


def go(engine, iid: int, action: str, data=None, when: datetime = t("2025-09-25", "10:00"),  # type: ignore[no-untyped-def]
       staff: str = "chen_jing"):
    return engine.advance(iid, action, staff, data or {}, at=when)


@pytest.fixture(autouse=True)
def _clock_before_the_scenarios(clock) -> None:  # type: ignore[no-untyped-def]
    """Commands here are dated from 25 September; the clock starts before them."""
    clock.set(t("2025-09-25", "08:00"))


def open_works(engine, opened: datetime = t("2025-09-26", "15:00")):  # type: ignore[no-untyped-def]
    r = engine.start("renovation", "liu_fang", APPLICATION, at=t("2025-09-25", "09:00"))
    go(engine, r.id, "explain_rules", BRIEFING, t("2025-09-25", "09:10"))
    go(engine, r.id, "approve_plan", ALL_PASS, t("2025-09-25", "10:00"))
    go(engine, r.id, "review_contractor", CONTRACTOR, t("2025-09-25", "11:00"))
    go(engine, r.id, "sign_agreement", AGREEMENT, t("2025-09-25", "11:30"))
    return go(engine, r.id, "issue_passes", PASSES, opened)


def test_ren1_rules_are_explained_before_the_plan_is_reviewed(engine) -> None:  # type: ignore[no-untyped-def]
    r = engine.start("renovation", "liu_fang", APPLICATION, at=t("2025-09-25", "09:00"))
    assert r.state == "briefing" and r.assignee == "chen_jing"
    with pytest.raises(ActionNotAllowed, match="not available"):
        go(engine, r.id, "approve_plan", ALL_PASS)
    with pytest.raises(ActionNotAllowed, match="REN-1"):
        go(engine, r.id, "explain_rules", {**BRIEFING, "rules_explained": False})
    with pytest.raises(FormInvalid, match="owner_acknowledgement"):
        go(engine, r.id, "explain_rules", {"rules_explained": True, "noise_hours_explained": True})
    assert go(engine, r.id, "explain_rules", BRIEFING).state == "plan_review"


def test_ren2_plan_with_violations_is_returned_with_the_reasons(engine) -> None:  # type: ignore[no-untyped-def]
    r = engine.start("renovation", "liu_fang", APPLICATION, at=t("2025-09-25", "09:00"))
    go(engine, r.id, "explain_rules", BRIEFING, t("2025-09-25", "09:10"))
    failing = {"plan_checks": {**ALL_PASS["plan_checks"],
                               "structure_intact": {"result": "fail", "note": "拆除客厅与卧室间承重墙"},
                               "no_awnings": {"result": "fail", "note": "阳台加装雨篷"}}}
    with pytest.raises(ActionNotAllowed, match="REN-2"):
        go(engine, r.id, "return_plan", failing, t("2025-09-25", "10:00"))      # reasons must be given
    with pytest.raises(FormInvalid, match="plan_checks"):
        go(engine, r.id, "return_plan", {"plan_checks": {"structure_intact": {"result": "maybe"}},
                                         "return_reasons": "x"}, t("2025-09-25", "10:00"))
    returned = go(engine, r.id, "return_plan", {**failing, "return_reasons": "不得拆改承重墙；阳台不得搭建雨篷"},
                  t("2025-09-25", "10:00"))
    assert returned.state == "plan_returned"
    assert returned.data["plan_checks"]["structure_intact"] == {"result": "fail", "note": "拆除客厅与卧室间承重墙"}
    assert "不得拆改承重墙" in notices(engine, r.id)[-1]["message"]
    go(engine, r.id, "resubmit_plan", {"plan_drawings": "doc:plan-v2", "revision_note": "保留承重墙，取消雨篷"},
       t("2025-09-27", "10:00"))
    approved = go(engine, r.id, "approve_plan", ALL_PASS, t("2025-09-28", "10:00"))
    assert approved.state == "contractor_review" and approved.data["plan_approved_at"] == "2025-09-28T10:00:00+08:00"


def test_ren2_a_plan_with_a_failed_item_cannot_be_approved(engine) -> None:  # type: ignore[no-untyped-def]
    r = engine.start("renovation", "liu_fang", APPLICATION, at=t("2025-09-25", "09:00"))
    go(engine, r.id, "explain_rules", BRIEFING, t("2025-09-25", "09:10"))
    failing = {"plan_checks": {**ALL_PASS["plan_checks"], "facade_unchanged": {"result": "fail", "note": "封阳台"}}}
    with pytest.raises(ActionNotAllowed):
        go(engine, r.id, "approve_plan", failing, t("2025-09-25", "10:00"))
    with pytest.raises(ActionNotAllowed):
        go(engine, r.id, "return_plan", {**ALL_PASS, "return_reasons": "无"}, t("2025-09-25", "10:00"))


def test_ren3_contractor_documents_agreement_worker_passes_and_destructive_tools(engine) -> None:  # type: ignore[no-untyped-def]
    r = engine.start("renovation", "liu_fang", APPLICATION, at=t("2025-09-25", "09:00"))
    go(engine, r.id, "explain_rules", BRIEFING, t("2025-09-25", "09:10"))
    go(engine, r.id, "approve_plan", ALL_PASS, t("2025-09-25", "10:00"))
    for early in ("sign_agreement", "issue_passes"):
        with pytest.raises(ActionNotAllowed, match="not available"):
            go(engine, r.id, early, {}, t("2025-09-25", "10:30"))
    with pytest.raises(ActionNotAllowed, match="REN-3"):
        go(engine, r.id, "review_contractor", {**CONTRACTOR, "documents_complete": False}, t("2025-09-25", "11:00"))
    go(engine, r.id, "review_contractor", CONTRACTOR, t("2025-09-25", "11:00"))
    with pytest.raises(FormInvalid, match="contractor_signature"):
        go(engine, r.id, "sign_agreement", {k: v for k, v in AGREEMENT.items() if k != "contractor_signature"},
           t("2025-09-25", "11:30"))
    go(engine, r.id, "sign_agreement", AGREEMENT, t("2025-09-25", "11:30"))
    opened = engine.advance(r.id, "issue_passes", "xu_bin", PASSES, at=t("2025-09-26", "15:00"))
    assert opened.state == "works_open" and opened.data["pass_numbers"] == "ZX-101..ZX-104"
    tools = engine.advance(r.id, "register_tools", "xu_bin", {"tools": "金刚取孔机1台、大锤2把", "tools_carrier": "刘工"},
                           at=t("2025-09-29", "08:30"))
    assert tools.data["tool_entries"] == 1 and tools.data["tools"] == "金刚取孔机1台、大锤2把"
    go(engine, r.id, "request_acceptance", {"completed_on": "2025-10-10"}, t("2025-10-10", "10:00"))
    acceptance = {"acceptance_passed": True, "acceptance_record": "doc:ys", "inspector_signature": "sig:chen"}
    with pytest.raises(ActionNotAllowed, match="REN-3"):
        go(engine, r.id, "accept_works", acceptance, t("2025-10-10", "15:00"))     # tools still on site
    assert go(engine, r.id, "accept_works", {**acceptance, "tools_removed": True},
              t("2025-10-10", "15:00")).state == "archiving"


def test_ren4_fewer_than_two_steward_patrols_on_a_workday_is_a_breach(engine, clock) -> None:  # type: ignore[no-untyped-def]
    opened = t("2025-09-26", "15:00")
    r = open_works(engine, opened)                           # Friday 26 September, 15:00
    skip_to(engine, t("2025-09-26", "18:30"))            # opening day: not judged
    assert engine.show(r.id).data["patrol_breach_days"] == 0
    skip_to(engine, t("2025-09-28", "18:30"))            # Sunday 28th is a make-up workday: no patrol
    assert engine.show(r.id).data["missed_patrols"] == 2
    go(engine, r.id, "steward_patrol", PATROL, t("2025-09-29", "10:00"))
    go(engine, r.id, "steward_patrol", PATROL, t("2025-09-29", "16:00"))
    skip_to(engine, t("2025-09-29", "18:30"))            # Monday: two patrols, met
    go(engine, r.id, "steward_patrol", PATROL, t("2025-09-30", "10:00"))
    engine.advance(r.id, "team_patrol", "xu_bin", PATROL, at=t("2025-09-30", "15:00"))   # the team's do not count
    skip_to(engine, t("2025-09-30", "18:30"))            # Tuesday: one patrol, breach
    data = engine.show(r.id).data
    assert (data["patrol_breach_days"], data["missed_patrols"], data["patrols_today"]) == (2, 3, 0)
    assert data["team_patrols"] == 1 and data["steward_patrols"] == 3
    for day in ("2025-10-01", "2025-10-05", "2025-10-08"):   # National Day holiday: no check
        skip_to(engine, t(day, "18:30"))
    assert engine.show(r.id).data["patrol_breach_days"] == 2
    skip_to(engine, t("2025-10-09", "18:30"))            # Thursday after the holiday: none at all
    skip_to(engine, t("2025-10-10", "18:30"))
    go(engine, r.id, "steward_patrol", PATROL, t("2025-10-11", "09:30"))
    go(engine, r.id, "steward_patrol", PATROL, t("2025-10-11", "14:30"))
    skip_to(engine, t("2025-10-11", "18:30"))            # make-up Saturday: checked, and met
    data = engine.show(r.id).data
    assert (data["patrol_breach_days"], data["missed_patrols"]) == (4, 7)
    checks = [e.occurred_at for e in engine.history(r.id)
              if e.type == "TimerFired" and '"name":"patrol_check"' in e.data_json and e.occurred_at > opened]
    assert [c.astimezone(SHANGHAI).strftime("%m-%d") for c in checks] == \
        ["09-26", "09-28", "09-29", "09-30", "10-09", "10-10", "10-11"]
    alerts = [n for n in notices(engine, r.id) if "REN-4" in n["message"]]
    assert len(alerts) == 4 and alerts[0]["recipients"] == ["li_qiang"]
    assert engine.replay(r.id).ok


def test_ren5_violation_is_stopped_and_escalated_persuade_economic_administrative_legal(engine) -> None:  # type: ignore[no-untyped-def]
    r = open_works(engine)
    found = {"violation_kind": "structure", "violation_description": "凿除卫生间与厨房间承重墙",
             "work_stopped_on_site": True}
    with pytest.raises(ActionNotAllowed, match="REN-5"):
        engine.advance(r.id, "record_violation", "xu_bin", {**found, "work_stopped_on_site": False},
                       at=t("2025-09-29", "10:00"))
    v = engine.advance(r.id, "record_violation", "xu_bin", found, at=t("2025-09-29", "10:00"))
    assert v.state == "violation" and v.data["violation_step"] == "stopped" and v.data["violations"] == 1
    measure = {"measure_details": "说明承重墙不得拆改", "owner_response": "拒不恢复"}
    for skipped, staff in (("economic_measure", "li_qiang"), ("administrative_measure", "zhang_hua"),
                           ("legal_measure", "zhang_hua")):
        with pytest.raises(ActionNotAllowed, match="REN-5"):
            engine.advance(r.id, skipped, staff, measure, at=t("2025-09-29", "10:30"))
    with pytest.raises(ActionNotAllowed, match="REN-5"):
        go(engine, r.id, "violation_corrected", {"correction_verified": True, "correction_note": "x"},
           t("2025-09-29", "10:40"))                          # not before at least persuading
    ladder = [("persuade", "chen_jing", "2025-09-29"), ("economic_measure", "li_qiang", "2025-09-30"),
              ("administrative_measure", "zhang_hua", "2025-10-09"), ("legal_measure", "qian_guo", "2025-10-13")]
    for action, staff, day in ladder:
        step = engine.advance(r.id, action, staff, measure, at=t(day, "11:00"))
    assert step.data["violation_step"] == "legal"
    assert [step.data[k] for k in ("persuaded_at", "economic_at", "administrative_at", "legal_at")] == \
        ["2025-09-29T11:00:00+08:00", "2025-09-30T11:00:00+08:00", "2025-10-09T11:00:00+08:00",
         "2025-10-13T11:00:00+08:00"]
    taken = [e for e in engine.history(r.id) if e.type == "ActionTaken"]
    assert [e.actor for e in taken[-4:]] == ["chen_jing", "li_qiang", "zhang_hua", "qian_guo"]
    with pytest.raises(ActionNotAllowed, match="REN-5"):
        engine.advance(r.id, "legal_measure", "qian_guo", measure, at=t("2025-10-13", "12:00"))  # no step 5
    back = go(engine, r.id, "violation_corrected", {"correction_verified": True, "correction_note": "已恢复原墙体"},
              t("2025-10-20", "10:00"))
    assert back.state == "works_open"


def test_ren6_noise_restricted_hours_are_told_watched_and_noisy_work_is_a_violation(engine, clock) -> None:  # type: ignore[no-untyped-def]
    r = engine.start("renovation", "liu_fang", APPLICATION, at=t("2025-09-25", "09:00"))
    assert "12:00-14:00" in r.data["noise_rule"]
    with pytest.raises(ActionNotAllowed, match="REN-6"):
        go(engine, r.id, "explain_rules", {**BRIEFING, "noise_hours_explained": False}, t("2025-09-25", "09:10"))
    engine.advance(r.id, "withdraw", "chen_jing", at=t("2025-09-25", "09:20"))
    r = open_works(engine)
    skip_to(engine, t("2025-09-29", "12:01"))
    noon = [n for n in notices(engine, r.id) if n["message"].startswith("12:00-14:00")]
    # One reminder per workday noon since the works opened: Sunday 09-28 (a make-up workday) and Monday.
    assert len(noon) == 2 and all(n["recipients"] == ["chen_jing"] for n in noon)
    noisy = {"violation_kind": "noise", "violation_description": "午休时间电钻施工", "work_stopped_on_site": True}
    with pytest.raises(FormInvalid, match="noise_heard_at"):
        engine.advance(r.id, "record_violation", "xu_bin", noisy, at=t("2025-09-29", "12:40"))
    v = engine.advance(r.id, "record_violation", "xu_bin", {**noisy, "noise_heard_at": "2025-09-29T12:35:00+08:00"},
                       at=t("2025-09-29", "12:40"))
    assert v.state == "violation" and v.data["violation_kind"] == "noise"
    skip_to(engine, t("2025-09-30", "12:01"))                     # works stopped: no reminder while stopped
    assert len([n for n in notices(engine, r.id) if n["message"].startswith("12:00-14:00")]) == 2


def test_ren7_completion_acceptance_and_the_file_is_archived(engine) -> None:  # type: ignore[no-untyped-def]
    r = open_works(engine)
    go(engine, r.id, "request_acceptance", {"completed_on": "2025-10-10"}, t("2025-10-10", "10:00"))
    rework = go(engine, r.id, "reject_works", {"rework_reasons": "空调冷凝水未接入专用管道"}, t("2025-10-10", "11:00"))
    assert rework.state == "works_open"
    go(engine, r.id, "request_acceptance", {"completed_on": "2025-10-13"}, t("2025-10-13", "10:00"))
    with pytest.raises(ActionNotAllowed, match="REN-7"):
        go(engine, r.id, "accept_works", {"acceptance_passed": False, "acceptance_record": "doc:ys",
                                          "inspector_signature": "sig:chen"}, t("2025-10-13", "11:00"))
    accepted = go(engine, r.id, "accept_works", {"acceptance_passed": True, "acceptance_record": "doc:ys",
                                                 "inspector_signature": "sig:chen", "deposit_refund": "2000.00"},
                  t("2025-10-13", "11:00"))
    assert accepted.state == "archiving"
    filed = {"file_no": "ZX-2025-031", "application_filed": True, "agreement_filed": True, "approvals_filed": True,
             "inspection_records_filed": True}
    with pytest.raises(ActionNotAllowed, match="REN-7"):
        go(engine, r.id, "archive", {**filed, "inspection_records_filed": False}, t("2025-10-14", "10:00"))
    done = go(engine, r.id, "archive", filed, t("2025-10-14", "10:00"))
    assert done.state == "archived" and done.status == "completed" and done.data["file_no"] == "ZX-2025-031"
    # archived: the daily patrol and both quiet-hour reminders stop with the works
    assert {d["name"]: d["status"] for d in engine.deadlines(r.id)} == {
        "patrol_check": "cancelled", "quiet_evening": "cancelled", "quiet_noon": "cancelled"}
    assert engine.replay(r.id).ok
