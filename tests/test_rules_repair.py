"""Repair requests (REP-1..5): one scenario per rule, through the engine API and the CLI,
on the real calendar (a request taken on the last workday before National Day 2025)."""
from __future__ import annotations

import json

import pytest

from engine.errors import ActionNotAllowed, FormInvalid, NotAuthorized
from tests.case_helpers import clock, engine, notifications, runner, t  # noqa: F401  (fixtures)

REQUEST = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
           "content": "卫生间水龙头漏水"}
SITE_FREE = {"site_findings": "阀芯老化", "needs_fee": False}
SITE_PAID = {"site_findings": "户内水龙头损坏，需更换", "needs_fee": True}


def to_engineering(engine, data=None):  # type: ignore[no-untyped-def]
    """A request taken at 17:40 on the last workday before National Day, dispatched at 17:45."""
    r = engine.start("repair", "liu_fang", data or REQUEST, at=t("2025-09-30T17:40"))
    return engine.advance(r.id, "dispatch", "liu_fang", at=t("2025-09-30T17:45"))


def test_rep1_request_is_recorded_with_its_receiver_and_passed_to_engineering(engine) -> None:  # type: ignore[no-untyped-def]
    r = engine.start("repair", "liu_fang", REQUEST, at=t("2025-09-30T17:40"))
    assert r.state == "received" and r.assignee == "liu_fang"          # the receiver follows it
    assert r.data["receiver"] == "liu_fang" and r.data["contact"] == "13912345678"
    with pytest.raises(FormInvalid):                                    # who, what, contact
        engine.start("repair", "liu_fang", {k: v for k, v in REQUEST.items() if k != "contact"})
    r = engine.advance(r.id, "dispatch", "liu_fang", at=t("2025-09-30T17:45"))
    assert r.state == "engineering" and r.assignee is None and r.assignee_role == "engineering"
    assert r.data["dispatched_at"] == "2025-09-30T17:45:00+08:00"
    note = notifications(engine, r.id)[-1]
    assert set(note["recipients"]) == {"wu_gang", "zheng_bo"} and "卫生间水龙头漏水" in note["message"]
    assert [i.id for i in engine.tasks(role="engineering")] == [r.id]
    assert engine.replay(r.id).ok


def test_rep2_engineering_confirms_on_site_and_the_manager_reviews_out_of_list_requests(engine) -> None:  # type: ignore[no-untyped-def]
    r = engine.start("repair", "liu_fang", {**REQUEST, "content": "客厅加装插座", "in_service_list": False},
                     at=t("2025-09-30T10:00"))
    with pytest.raises(ActionNotAllowed, match="工程部经理评审"):
        engine.advance(r.id, "dispatch", "liu_fang", at=t("2025-09-30T10:05"))
    r = engine.advance(r.id, "refer_for_review", "liu_fang", at=t("2025-09-30T10:05"))
    assert r.state == "out_of_list_review" and r.assignee_role == "engineering_manager"
    with pytest.raises(NotAuthorized):                                 # not an engineer's call
        engine.advance(r.id, "approve_out_of_list", "wu_gang", {"review_opinion": "可做"}, at=t("2025-09-30T11:00"))
    r = engine.advance(r.id, "approve_out_of_list", "feng_tao", {"review_opinion": "同意，按有偿服务"},
                       at=t("2025-10-09T09:30"))
    assert r.state == "engineering"
    r = engine.claim(r.id, "zheng_bo", at=t("2025-10-09T10:00"))
    r = engine.advance(r.id, "confirm_on_site", "zheng_bo", SITE_FREE, at=t("2025-10-09T10:30"))
    assert r.state == "on_site" and r.assignee == "zheng_bo" and r.data["engineer"] == "zheng_bo"
    r = engine.advance(r.id, "start_repair", "zheng_bo", at=t("2025-10-09T10:35"))
    assert r.state == "repairing" and r.assignee == "zheng_bo"

    # A request found on site to be outside the list goes to the manager too; declined → owner told.
    other = to_engineering(engine, {**REQUEST, "content": "阳台改造"})
    other = engine.advance(other.id, "refer_for_review", "wu_gang", at=t("2025-10-09T11:00"))
    other = engine.advance(other.id, "decline_out_of_list", "feng_tao", {"review_opinion": "不属物业维修范围"},
                           at=t("2025-10-09T14:00"))
    assert other.state == "declined" and other.assignee == "liu_fang"
    other = engine.advance(other.id, "inform_declined", "liu_fang", {"inform_method": "phone"}, at=t("2025-10-09T14:30"))
    assert other.status == "completed" and other.children == ()


def test_rep3_paid_repair_fee_set_by_engineering_approved_by_director_and_slip_signed(engine) -> None:  # type: ignore[no-untyped-def]
    r = to_engineering(engine)
    r = engine.advance(r.id, "confirm_on_site", "wu_gang", SITE_PAID, at=t("2025-10-09T09:30"))
    with pytest.raises(ActionNotAllowed, match="REP-3"):               # no paid repair without a fee
        engine.advance(r.id, "start_repair", "wu_gang", at=t("2025-10-09T09:35"))
    r = engine.advance(r.id, "set_fee", "wu_gang", {"fee_amount": "120.00", "fee_basis": "龙头 80 元，人工 40 元"},
                       at=t("2025-10-09T09:40"))
    assert r.state == "fee_approval" and r.assignee_role == "office_director"
    with pytest.raises(NotAuthorized):                                  # the supervisor may not approve
        engine.advance(r.id, "approve_fee", "li_qiang", {}, at=t("2025-10-09T10:00"))
    r = engine.advance(r.id, "return_fee", "zhang_hua", {"fee_decision_note": "人工费偏高"}, at=t("2025-10-09T10:00"))
    assert r.state == "on_site" and r.assignee == "wu_gang"             # back to the engineer who set it
    r = engine.advance(r.id, "set_fee", "wu_gang", {"fee_amount": "110.00", "fee_basis": "龙头 80 元，人工 30 元"},
                       at=t("2025-10-09T10:20"))
    r = engine.advance(r.id, "approve_fee", "zhang_hua", {"fee_decision_note": "同意"}, at=t("2025-10-09T10:30"))
    assert r.state == "repairing" and r.data["fee_approved_by"] == "zhang_hua"

    slip = {"repair_items": "更换卫生间水龙头", "work_started_at": "2025-10-09T14:00:00+08:00",
            "work_finished_at": "2025-10-09T14:40:00+08:00", "materials": "水龙头 1 个",
            "material_cost": "80.00", "labour_cost": "30.00", "owner_signature": "sig://3-1201/20251009"}
    with pytest.raises(FormInvalid, match="owner_signature"):           # the owner signs a paid slip
        engine.advance(r.id, "finish_repair", "wu_gang", {k: v for k, v in slip.items() if k != "owner_signature"},
                       at=t("2025-10-09T14:45"))
    with pytest.raises(ActionNotAllowed, match="已审批的费用"):          # not more than approved
        engine.advance(r.id, "finish_repair", "wu_gang", {**slip, "labour_cost": "50.00"}, at=t("2025-10-09T14:45"))
    r = engine.advance(r.id, "finish_repair", "wu_gang", slip, at=t("2025-10-09T14:45"))
    assert r.state == "completed" and r.data["total_cost"] == "110.00"
    assert r.data["material_cost"] == "80.00" and r.data["labour_cost"] == "30.00"
    assert engine.replay(r.id).ok


def test_rep4_customer_service_follows_informs_the_owner_and_a_callback_follows(engine) -> None:  # type: ignore[no-untyped-def]
    r = to_engineering(engine)
    r = engine.advance(r.id, "follow_up", "liu_fang", {"follow_up_note": "业主催问，请尽快上门"}, at=t("2025-10-09T09:00"))
    assert r.state == "engineering"
    r = engine.advance(r.id, "confirm_on_site", "wu_gang", SITE_FREE, at=t("2025-10-09T09:30"))
    r = engine.advance(r.id, "start_repair", "wu_gang", at=t("2025-10-09T09:35"))
    r = engine.advance(r.id, "finish_repair", "wu_gang", {"repair_items": "更换阀芯",
                       "work_started_at": "2025-10-09T09:40:00+08:00", "work_finished_at": "2025-10-09T10:10:00+08:00"},
                       at=t("2025-10-09T10:15"))
    assert r.state == "completed" and r.assignee == "liu_fang"         # back to customer service
    assert "请告知业主并安排回访" in notifications(engine, r.id)[-1]["message"]
    r = engine.advance(r.id, "inform_owner", "liu_fang", {"inform_method": "phone"}, at=t("2025-10-09T10:30"))
    assert r.status == "completed" and len(r.children) == 1
    cb = engine.show(r.children[0])
    assert cb.procedure == "callback" and cb.parent_id == r.id and cb.assignee_role == "cs_supervisor"
    assert cb.data["source_procedure"] == "repair" and cb.data["source_id"] == r.id
    assert cb.data["matter"] == "卫生间水龙头漏水" and cb.data["unit"] == "3-1201"


def test_rep4_paid_repair_fee_settlement_is_recorded_when_the_owner_is_informed(runner) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    def sop(*args: str) -> dict:
        res = runner.invoke(main, ["--json", *args])
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)

    r = sop("start", "repair", "--as", "zhou_min", "--data", json.dumps(REQUEST), "--at", "2025-09-30T17:50:00+08:00")
    iid = str(r["id"])
    sop("advance", iid, "dispatch", "--as", "zhou_min", "--at", "2025-09-30T17:55:00+08:00")
    sop("advance", iid, "confirm_on_site", "--as", "wu_gang", "--data", json.dumps(SITE_PAID), "--at", "2025-10-09T09:30:00+08:00")
    sop("advance", iid, "set_fee", "--as", "wu_gang", "--data", '{"fee_amount": "80.00", "fee_basis": "龙头"}',
        "--at", "2025-10-09T09:40:00+08:00")
    sop("advance", iid, "approve_fee", "--as", "zhang_hua", "--data", "{}", "--at", "2025-10-09T10:00:00+08:00")
    sop("advance", iid, "finish_repair", "--as", "wu_gang", "--at", "2025-10-09T11:00:00+08:00", "--data", json.dumps(
        {"repair_items": "更换水龙头", "work_started_at": "2025-10-09T10:30:00+08:00",
         "work_finished_at": "2025-10-09T10:55:00+08:00", "materials": "水龙头", "material_cost": "60.00",
         "labour_cost": "20.00", "owner_signature": "sig://1"}))
    bad = runner.invoke(main, ["advance", iid, "inform_owner", "--as", "zhou_min", "--data", '{"inform_method": "phone"}'])
    assert bad.exit_code == 1 and "fee_settlement" in bad.output
    done = sop("advance", iid, "inform_owner", "--as", "zhou_min", "--at", "2025-10-09T11:30:00+08:00", "--data",
               '{"inform_method": "visit", "fee_settlement": "monthly_bill"}')
    assert done["status"] == "completed" and done["data"]["fee_settlement"] == "monthly_bill"
    assert runner.invoke(main, ["replay", iid]).exit_code == 0


def test_rep5_second_report_of_the_same_fault_is_the_first_receivers_responsibility(engine) -> None:  # type: ignore[no-untyped-def]
    first = engine.start("repair", "zhou_min", REQUEST, at=t("2025-09-30T09:00"))
    assert first.assignee == "zhou_min"
    again = engine.start("repair", "liu_fang", {**REQUEST, "repeat_of": first.id, "first_receiver": "zhou_min"},
                         at=t("2025-10-09T09:00"))
    assert again.data["receiver"] == "liu_fang" and again.data["cs_owner"] == "zhou_min"
    assert again.assignee == "zhou_min" and again.data["priority"] == "high"
    alert = notifications(engine, again.id)[0]
    assert alert["recipients"] == ["li_qiang"] and "重复报修" in alert["message"]
    # The first receiver also takes it back when engineering is done.
    again = engine.advance(again.id, "dispatch", "zhou_min", at=t("2025-10-09T09:10"))
    again = engine.advance(again.id, "confirm_on_site", "wu_gang", SITE_FREE, at=t("2025-10-09T10:00"))
    again = engine.advance(again.id, "start_repair", "wu_gang", at=t("2025-10-09T10:05"))
    again = engine.advance(again.id, "finish_repair", "wu_gang", {"repair_items": "更换阀芯",
                           "work_started_at": "2025-10-09T10:05:00+08:00", "work_finished_at": "2025-10-09T10:30:00+08:00"},
                           at=t("2025-10-09T10:30"))
    assert again.state == "completed" and again.assignee == "zhou_min"
