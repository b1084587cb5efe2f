"""Fee dunning (DUN-1..13): one scenario per rule (DUN-5 per class), on the real calendar —
National Day 2025 (1-8 October off, Sunday 28 September and Saturday 11 October worked)
and Spring Festival 2026 (15-23 February off, Saturdays 14 and 28 February worked)."""
from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ActionNotAllowed, FormInvalid, NotAuthorized
from engine.timeskip import skip_days, skip_to
from tests.conftest import SHANGHAI
from tests.case_helpers import (clock, deadline, engine, events, local, notifications, t,  # noqa: F401  (fixture)
                                timer_fires)

CASE = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "period": "2025-09",
        "amount_due": "1280.00"}


def call(reached: str = "reached", result: str = "已电话联系", means: str = "phone", **more: Any) -> dict:
    return {"contact_means": means, "owner_reached": reached, "contact_result": result, **more}


def open_case(engine, posted: str = "2025-09-24T09:00", **data: Any):  # type: ignore[no-untyped-def]
    """A case started when the payment notices were posted (the collective week begins)."""
    return engine.start("dunning", "li_qiang", {**CASE, "notices_posted_at": t(posted).isoformat(), **data},
                        at=t(posted))


def in_ledger(engine, at: str = "2025-09-29T09:00", **data: Any):  # type: ignore[no-untyped-def]
    """A case the supervisor has put in the ledger (assigned to the building's steward)."""
    c = open_case(engine, **data)
    return engine.advance(c.id, "enter_ledger", "li_qiang", at=t(at))


def messages(engine, iid: int, containing: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [n["_at"] for n in notifications(engine, iid, containing)]


# ---------------------------------------------------------------- DUN-1, DUN-2, DUN-3

def test_dun1_units_enter_the_ledger_only_after_the_collective_payment_week(engine) -> None:  # type: ignore[no-untyped-def]
    c = open_case(engine, posted="2025-09-26T09:00")              # a Friday; the week ends in the holiday
    assert c.state == "collective_period" and c.assignee is None
    assert deadline(engine, c.id, "collective_period_over")["due"] == "2025-10-03T09:00:00+08:00"
    assert "first_call" not in {d["name"] for d in engine.deadlines(c.id)}
    skip_to(engine, t("2025-10-03T08:59"))
    assert engine.show(c.id).state == "collective_period"
    skip_to(engine, t("2025-10-03T09:00"))
    c = engine.show(c.id)
    assert c.state == "ledger" and c.assignee == "chen_jing"
    taken = events(engine, c.id, "ActionTaken")[0]
    assert (taken["action"], taken["_actor"], taken["_at"]) == ("enter_ledger", "system", "2025-10-03T09:00")

    # A unit that pays in the collective week never reaches the ledger.
    paid = open_case(engine, posted="2025-09-26T09:00", unit="5-0301")
    paid = engine.advance(paid.id, "record_payment", "liu_fang", {"payment_amount": "1280.00",
                          "payment_channel": "front_desk", "payment_reference": "SJ-0001"}, at=t("2025-09-28T10:00"))
    assert paid.status == "completed" and paid.state == "collective_period" and paid.data["outcome"] == "paid"
    skip_to(engine, t("2025-10-04T00:00"))
    assert engine.show(paid.id).assignee is None


def test_dun2_ledger_assigns_each_unit_to_its_steward_and_the_supervisor_splits_the_plan(engine) -> None:  # type: ignore[no-untyped-def]
    a = open_case(engine)
    b = open_case(engine, unit="7-0802")
    with pytest.raises(NotAuthorized):
        engine.advance(a.id, "enter_ledger", "chen_jing", at=t("2025-09-26T09:00"))
    a = engine.advance(a.id, "enter_ledger", "li_qiang", at=t("2025-09-26T09:00"))
    b = engine.advance(b.id, "enter_ledger", "li_qiang", at=t("2025-09-26T09:00"))
    assert (a.state, a.assignee, a.data["responsible_steward"]) == ("ledger", "chen_jing", "chen_jing")
    assert b.assignee == "sun_yan"
    assert a.data["ledger_at"] == "2025-09-26T09:00:00+08:00"
    assert [i.id for i in engine.tasks(staff="chen_jing")] == [a.id]
    assert "5个工作日内完成首次电话催缴" in notifications(engine, a.id)[-1]["message"]
    with pytest.raises(NotAuthorized):                                # only the supervisor splits the plan
        engine.advance(a.id, "assign_steward", "chen_jing", {"responsible_steward": "wang_li"}, at=t("2025-09-26T10:00"))
    a = engine.advance(a.id, "assign_steward", "li_qiang", {"responsible_steward": "wang_li"}, at=t("2025-09-26T10:00"))
    assert a.assignee == "wang_li"
    a = engine.advance(a.id, "classify_b", "wang_li", call("no_answer", "无人接听"), at=t("2025-09-26T11:00"))
    assert a.state == "class_b" and a.assignee == "wang_li"          # the reassignment sticks
    assert engine.replay(a.id).ok


def test_dun3_first_call_within_five_workdays_counting_the_make_up_saturday(engine) -> None:  # type: ignore[no-untyped-def]
    late = in_ledger(engine, at="2025-09-29T10:00")
    on_time = in_ledger(engine, at="2025-09-29T10:00", unit="3-0502")
    # 9-30, 10-09, 10-10, Saturday 10-11 (调休) and 10-13: due at the end of 13 October.
    assert deadline(engine, late.id, "first_call") == {"name": "first_call", "kind": "sla", "status": "open",
                                                       "due": "2025-10-13T18:00:00+08:00"}
    engine.advance(on_time.id, "classify_b", "chen_jing", call("phone_off", "关机"), at=t("2025-10-13T17:30"))
    assert deadline(engine, on_time.id, "first_call")["status"] == "met"
    skip_to(engine, t("2025-10-13T18:00"))
    assert deadline(engine, late.id, "first_call")["status"] == "breached"
    warned = notifications(engine, late.id, "首次电话催缴即将到期")
    assert warned and warned[0]["recipients"] == ["chen_jing"] and warned[0]["_at"] < "2025-10-13T18:00"
    breach = notifications(engine, late.id, "仍未首次电话催缴")
    assert breach[0]["recipients"] == ["li_qiang"] and breach[0]["_at"] == "2025-10-13T18:00"
    c = engine.advance(late.id, "classify_c", "chen_jing", call("empty_number", "空号"), at=t("2025-10-14T09:00"))
    assert c.data["first_call_at"] == "2025-10-14T09:00:00+08:00"
    assert deadline(engine, late.id, "first_call")["status"] == "breached"   # a late call stays late


# ---------------------------------------------------------------- DUN-4, DUN-5

def test_dun4_the_first_call_classifies_the_unit_a_to_e(engine) -> None:  # type: ignore[no-untyped-def]
    c = in_ledger(engine)
    at = t("2025-09-29T10:00")
    with pytest.raises(ActionNotAllowed, match="承诺"):                # A needs a promised date
        engine.advance(c.id, "classify_a", "chen_jing", call(), at=at)
    with pytest.raises(ActionNotAllowed, match="承诺"):                # ... not in the past
        engine.advance(c.id, "classify_a", "chen_jing", call(promised_date="2025-09-28"), at=at)
    with pytest.raises(ActionNotAllowed, match="C类"):                 # no answer is B, not C
        engine.advance(c.id, "classify_c", "chen_jing", call("no_answer"), at=at)
    with pytest.raises(ActionNotAllowed, match="停机"):                 # a dead number is C, not B
        engine.advance(c.id, "classify_b", "chen_jing", call("wrong_number"), at=at)
    with pytest.raises(ActionNotAllowed, match="拒交原因"):
        engine.advance(c.id, "classify_e", "chen_jing", call(), at=at)
    with pytest.raises(ActionNotAllowed, match="异地"):
        engine.advance(c.id, "classify_d", "chen_jing", call(), at=at)

    expected = {
        "classify_a": (call(promised_date="2025-10-10", promise_kind="pay_by_date"), "class_a", "A"),
        "classify_b": (call("phone_off", "关机"), "class_b", "B"),
        "classify_c": (call("disconnected", "停机"), "class_c", "C"),
        "classify_d": (call(result="在深圳工作，年底回来", away_location="深圳"), "class_d", "D"),
        "classify_e": (call(result="对绿化不满拒交", refusal_reason="service"), "class_e", "E"),
    }
    for n, (action, (data, state, cls)) in enumerate(expected.items()):
        u = in_ledger(engine, unit=f"4-{n + 1:02d}01")
        u = engine.advance(u.id, action, "chen_jing", data, at=at)
        assert (u.state, u.data["dunning_class"], u.data["contact_count"]) == (state, cls, 1)
        assert u.data["first_call_at"] == "2025-09-29T10:00:00+08:00"
        assert deadline(engine, u.id, "first_call")["status"] == "met"


def test_dun5_class_a_reminder_on_the_workday_before_the_promised_date(engine) -> None:  # type: ignore[no-untyped-def]
    c = in_ledger(engine)
    c = engine.advance(c.id, "classify_a", "chen_jing", call(promised_date="2025-10-13"), at=t("2025-09-30T10:00"))
    skip_days(engine, t("2025-09-30T23:59"), t("2025-10-10T23:59"))
    assert timer_fires(engine, c.id, "a_reminder") == []
    skip_to(engine, t("2025-10-11T18:00"))                             # Saturday 11 October is a workday
    [fired] = timer_fires(engine, c.id, "a_reminder")
    assert fired.startswith("2025-10-11")
    reminder = notifications(engine, c.id, "请今日电话提醒")
    assert reminder[0]["recipients"] == ["chen_jing"] and "2025-10-13" in reminder[0]["message"]
    # The promise not kept: the day after, back to daily calls (B).
    skip_days(engine, t("2025-10-12T23:59"), t("2025-10-14T23:59"))
    c = engine.show(c.id)
    assert c.state == "class_b" and c.data["dunning_class"] == "B"
    assert events(engine, c.id, "ActionTaken")[-1]["action"] == "promise_lapsed"
    assert engine.replay(c.id).ok


def test_dun5_class_b_is_called_every_workday_until_it_becomes_a(engine) -> None:  # type: ignore[no-untyped-def]
    c = in_ledger(engine)
    c = engine.advance(c.id, "classify_b", "chen_jing", call("no_answer", "无人接听"), at=t("2025-09-29T11:00"))
    skip_days(engine, t("2025-09-29T23:59"), t("2025-10-12T23:59"))
    skip_to(engine, t("2025-10-13T10:00"))
    assert timer_fires(engine, c.id, "b_daily_call") == [
        "2025-09-30T10:00", "2025-10-09T10:00", "2025-10-10T10:00", "2025-10-11T10:00", "2025-10-13T10:00"]
    daily = notifications(engine, c.id, "B类每日催缴")
    assert len(daily) == 5 and "《催费通知单》" in daily[0]["message"] and daily[0]["recipients"] == ["chen_jing"]
    c = engine.advance(c.id, "record_contact", "chen_jing", call("notice_only", "已张贴催费通知单", "door_notice"),
                       at=t("2025-10-13T10:30"))                    # door notice: no photo needed for B
    c = engine.advance(c.id, "classify_a", "chen_jing", call(promised_date="2025-10-20"), at=t("2025-10-13T15:00"))
    skip_days(engine, t("2025-10-14T23:59"), t("2025-10-15T23:59"))
    assert len(timer_fires(engine, c.id, "b_daily_call")) == 5      # A: the daily calls stop
    assert deadline(engine, c.id, "b_daily_call")["status"] == "cancelled"


def test_dun5_class_c_home_visit_door_notice_and_new_contact_details(engine) -> None:  # type: ignore[no-untyped-def]
    c = in_ledger(engine)
    c = engine.advance(c.id, "classify_c", "chen_jing", call("empty_number", "空号"), at=t("2025-09-29T10:00"))
    todo = notifications(engine, c.id, "C类")[0]
    assert todo["recipients"] == ["chen_jing"] and "入户催缴" in todo["message"] and "最新联系方式" in todo["message"]
    c = engine.advance(c.id, "record_contact", "chen_jing", call("not_home", "上门未遇", "visit"), at=t("2025-09-29T15:00"))
    c = engine.advance(c.id, "record_contact", "chen_jing", call("notice_only", "入户门张贴催费通知单", "door_notice"),
                       at=t("2025-09-29T15:05"))
    c = engine.advance(c.id, "record_contact", "chen_jing",
                       call("reached", "经邻居取得业主新号码", "visit", new_contact="13698765432"), at=t("2025-09-30T10:00"))
    assert c.data["contact"] == "13698765432" and c.data["contact_count"] == 4
    c = engine.advance(c.id, "classify_a", "chen_jing", call(promised_date="2025-10-09"), at=t("2025-09-30T11:00"))
    assert c.state == "class_a"


def test_dun5_class_d_called_every_workday_and_guided_to_remote_payment(engine) -> None:  # type: ignore[no-untyped-def]
    c = in_ledger(engine, at="2026-02-11T09:00", posted="2026-02-05T09:00", period="2026-01")
    c = engine.advance(c.id, "classify_d", "chen_jing", call(result="在深圳过年", away_location="深圳"),
                       at=t("2026-02-12T10:30"))
    skip_days(engine, t("2026-02-12T23:59"), t("2026-02-25T23:59"))
    # Saturday 14 February is worked; 15-23 February (Spring Festival) are not.
    assert timer_fires(engine, c.id, "d_daily_call") == [
        "2026-02-13T10:00", "2026-02-14T10:00", "2026-02-24T10:00", "2026-02-25T10:00"]
    msg = notifications(engine, c.id, "D类每日催缴")[0]["message"]
    assert "深圳" in msg and "微信" in msg and "支付宝" in msg and "银行汇款" in msg


def test_dun5_class_e_the_supervisor_directs_the_measures(engine) -> None:  # type: ignore[no-untyped-def]
    c = in_ledger(engine)
    c = engine.advance(c.id, "classify_e", "chen_jing", call(result="开发商车位问题未解决，拒交", refusal_reason="developer"),
                       at=t("2025-09-29T10:00"))
    report = notifications(engine, c.id, "E类")[0]
    assert report["recipients"] == ["li_qiang"] and "developer" in report["message"]
    with pytest.raises(NotAuthorized):
        engine.advance(c.id, "direct_measures", "chen_jing", {"supervisor_measures": "x"}, at=t("2025-09-29T11:00"))
    c = engine.advance(c.id, "direct_measures", "li_qiang", {"supervisor_measures": "联系开发商协调车位后再上门"},
                       at=t("2025-09-29T11:00"))
    told = notifications(engine, c.id, "主管指导措施")[0]
    assert told["recipients"] == ["chen_jing"] and "联系开发商" in told["message"]
    assert c.state == "class_e" and c.data["supervisor_measures"] == "联系开发商协调车位后再上门"


# ---------------------------------------------------------------- DUN-6, DUN-7

def reports(engine, name: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """The scheduled report ``name`` of the dunning procedure as sent (outbox rows), oldest first."""
    import sqlalchemy as sa

    from engine.store.tables import outbox

    with engine.read() as conn:
        rows = conn.execute(sa.select(outbox).where(outbox.c.idempotency_key.like(f"report:dunning:{name}:%"))
                            .order_by(outbox.c.created_at, outbox.c.recipient)).all()
    return [{"_at": r.created_at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M"), "recipient": r.recipient,
             "message": r.message} for r in rows]


def test_dun6_supervisor_gets_one_daily_report_over_all_cases_and_a_weekly_summary(engine) -> None:  # type: ignore[no-untyped-def]
    c, other = open_case(engine), open_case(engine, unit="3-0101")
    skip_to(engine, t("2025-09-29T08:59"))                               # the collective week is not reviewed
    assert reports(engine, "daily_review") == []
    for case in (c, other):
        engine.advance(case.id, "enter_ledger", "li_qiang", at=t("2025-09-29T09:00"))
    c = engine.advance(c.id, "classify_b", "chen_jing", call("no_answer", "无人接听"), at=t("2025-09-29T10:00"))
    skip_days(engine, t("2025-09-29T23:59"), t("2025-10-10T23:59"))
    daily = reports(engine, "daily_review")
    # One report per workday (none in the National Day holiday), to the supervisor, listing every case.
    assert [(d["_at"], d["recipient"]) for d in daily] == [
        ("2025-09-29T17:30", "li_qiang"), ("2025-09-30T17:30", "li_qiang"),
        ("2025-10-09T17:30", "li_qiang"), ("2025-10-10T17:30", "li_qiang")]
    first = daily[0]["message"].splitlines()
    assert first[0] == "催费日报表（2025-09-29）：2 户欠费，请审阅各管家今日催缴记录。" and len(first) == 3
    assert "3-1201" in first[1] and "无人接听" in first[1] and "chen_jing" in first[1] and "3-0101" in first[2]
    assert notifications(engine, c.id, "催费日报") == []                # no message per case any more
    # The weekly summary falls on each week's last workday: the make-up Sunday 09-28 was still
    # the collective week (nothing to sum up), so Tuesday 09-30 before the National Day holiday
    # (not the holiday Friday 10-03); the next week's is the make-up Saturday 10-11.
    assert [w["_at"] for w in reports(engine, "weekly_summary")] == ["2025-09-30T16:00"]
    skip_to(engine, t("2025-10-11T16:00"))
    weekly = reports(engine, "weekly_summary")
    assert [w["_at"] for w in weekly] == ["2025-09-30T16:00", "2025-10-11T16:00"]
    assert weekly[0]["message"].startswith("周总结（2025-09-30）：2 户仍欠费")
    c = engine.advance(c.id, "supervisor_review", "li_qiang", {"review_note": "请改在晚上拨打"}, at=t("2025-10-11T17:40"))
    assert c.data["last_review_by"] == "li_qiang"
    assert notifications(engine, c.id, "请改在晚上拨打")[0]["recipients"] == ["chen_jing"]
    with pytest.raises(NotAuthorized):
        engine.advance(c.id, "weekly_summary", "chen_jing", {"week_summary": "x", "next_week_plan": "y"},
                       at=t("2025-10-11T17:50"))
    engine.advance(c.id, "weekly_summary", "li_qiang", {"week_summary": "本周电话5次未接通",
                   "next_week_plan": "周二上门"}, at=t("2025-10-11T18:00"))
    assert notifications(engine, c.id, "周二上门")[0]["recipients"] == ["huang_min"]   # the company CS department


def refusing_case(engine):  # type: ignore[no-untyped-def]
    c = in_ledger(engine)
    c = engine.advance(c.id, "classify_e", "chen_jing", call(result="拒交", refusal_reason="other"), at=t("2025-09-29T10:00"))
    with pytest.raises(ActionNotAllowed, match="多次催缴"):
        engine.advance(c.id, "mark_refusing", "chen_jing", call(result="仍拒交"), at=t("2025-09-29T11:00"))
    engine.advance(c.id, "record_contact", "chen_jing", call(result="仍拒交"), at=t("2025-09-30T10:00"))
    return engine.advance(c.id, "mark_refusing", "chen_jing", call(result="第三次拒交"), at=t("2025-09-30T16:00"))


def test_dun7_refusing_unit_door_notice_photographed_and_senior_visits_in_turn(engine) -> None:  # type: ignore[no-untyped-def]
    c = refusing_case(engine)
    assert c.state == "refusing" and c.data["refusal"] is True and c.assignee == "chen_jing"
    with pytest.raises(FormInvalid, match="notice_photo"):
        engine.advance(c.id, "record_contact", "chen_jing", call("notice_only", "张贴", "door_notice"), at=t("2025-10-09T10:00"))
    c = engine.advance(c.id, "record_contact", "chen_jing",
                       call("notice_only", "张贴催费通知单并拍照", "door_notice", notice_photo="photo://3-1201/20251009"),
                       at=t("2025-10-09T10:00"))
    assert c.data["notice_photo"] == "photo://3-1201/20251009"

    c = engine.advance(c.id, "request_senior_visit", "chen_jing", at=t("2025-10-09T11:00"))
    assert (c.state, c.assignee_role) == ("visit_supervisor", "cs_supervisor")
    with pytest.raises(ActionNotAllowed):                              # in turn: the deputy comes second
        engine.advance(c.id, "deputy_visit", "he_jun", call(means="visit"), at=t("2025-10-09T14:00"))
    with pytest.raises(ActionNotAllowed, match="入户"):
        engine.advance(c.id, "supervisor_visit", "li_qiang", call(result="电话沟通"), at=t("2025-10-09T14:00"))
    c = engine.advance(c.id, "supervisor_visit", "li_qiang", call(result="上门沟通，仍拒交", means="visit"),
                       at=t("2025-10-09T14:00"))
    assert (c.state, c.assignee_role) == ("visit_deputy", "deputy_manager")
    assert notifications(engine, c.id, "请分管副经理上门")[0]["recipients"] == ["he_jun"]
    c = engine.advance(c.id, "deputy_visit", "he_jun", call(result="仍拒交", means="visit"), at=t("2025-10-10T14:00"))
    assert (c.state, c.assignee_role) == ("visit_director", "office_director")
    c = engine.advance(c.id, "director_visit", "zhang_hua", call(result="仍拒交", means="visit"), at=t("2025-10-11T10:00"))
    assert c.state == "refusing" and c.assignee == "chen_jing"
    assert [c.data[k][:10] for k in ("supervisor_visit_at", "deputy_visit_at", "director_visit_at")] == [
        "2025-10-09", "2025-10-10", "2025-10-11"]
    assert engine.replay(c.id).ok


def test_dun7_refusing_unit_is_called_every_workday(engine) -> None:  # type: ignore[no-untyped-def]
    c = refusing_case(engine)
    skip_days(engine, t("2025-09-30T23:59"), t("2025-10-10T23:59"))
    assert timer_fires(engine, c.id, "refusing_daily_call") == ["2025-10-09T10:00", "2025-10-10T10:00"]
    assert "拍照留存" in notifications(engine, c.id, "拒缴户每日催缴")[0]["message"]


# ---------------------------------------------------------------- DUN-8, DUN-9

def lawyer_letter_sent(engine):  # type: ignore[no-untyped-def]
    c = refusing_case(engine)
    with pytest.raises(NotAuthorized):
        engine.advance(c.id, "shortlist_letter", "chen_jing", {"shortlist_reason": "refusal", "shortlist_note": "x"},
                       at=t("2025-10-09T09:00"))
    c = engine.advance(c.id, "shortlist_letter", "li_qiang", {"shortlist_reason": "refusal",
                       "shortlist_note": "多次催缴及上门均拒交"}, at=t("2025-10-09T09:00"))
    assert (c.state, c.assignee_role) == ("letter_review", "cs_department")
    assert notifications(engine, c.id, "律师函名单")[0]["recipients"] == ["huang_min"]
    with pytest.raises(ActionNotAllowed):                              # no approval before the review
        engine.advance(c.id, "approve_letter", "qian_guo", {"approval_opinion": "同意"}, at=t("2025-10-09T10:00"))
    c = engine.advance(c.id, "review_letter", "huang_min", {"review_opinion": "材料齐全"}, at=t("2025-10-09T10:00"))
    assert (c.state, c.assignee_role) == ("letter_approval", "general_manager")
    assert notifications(engine, c.id, "律师函待审批")[0]["recipients"] == ["qian_guo"]
    with pytest.raises(NotAuthorized):                                 # the CS department cannot approve
        engine.advance(c.id, "approve_letter", "huang_min", {"approval_opinion": "同意"}, at=t("2025-10-09T11:00"))
    c = engine.advance(c.id, "approve_letter", "qian_guo", {"approval_opinion": "同意发送"}, at=t("2025-10-10T09:00"))
    assert c.state == "letter_approved" and c.data["letter_approved_by"] == "qian_guo"
    return engine.advance(c.id, "send_letter", "li_qiang", {"law_firm": "某某律师事务所", "letter_ref": "LF-2025-031",
                          "letter_sent_via": "ems"}, at=t("2025-10-10T15:00"))


def test_dun8_lawyers_letter_needs_cs_department_review_and_general_manager_approval(engine) -> None:  # type: ignore[no-untyped-def]
    c = lawyer_letter_sent(engine)
    assert c.state == "letter_sent" and c.data["letter_reviewed_by"] == "huang_min"
    assert c.data["letter_sent_at"] == "2025-10-10T15:00:00+08:00"
    # A letter the general manager turns down goes back to daily dunning.
    other = refusing_case(engine)
    other = engine.advance(other.id, "shortlist_letter", "li_qiang", {"shortlist_reason": "refusal",
                           "shortlist_note": "多次上门仍拒交"}, at=t("2025-10-09T09:00"))
    other = engine.advance(other.id, "review_letter", "huang_min", {"review_opinion": "同意"}, at=t("2025-10-09T10:00"))
    other = engine.advance(other.id, "return_letter", "qian_guo", {"review_opinion": "先由项目经理再上门一次"},
                           at=t("2025-10-09T11:00"))
    assert other.state == "refusing" and other.assignee == "chen_jing"


def test_dun9_litigation_after_the_letter_is_reviewed_approved_prepared_and_filed(engine) -> None:  # type: ignore[no-untyped-def]
    c = lawyer_letter_sent(engine)
    c = engine.advance(c.id, "propose_litigation", "chen_jing", {"shortlist_reason": "refusal",
                       "shortlist_note": "律师函送达后仍未缴"}, at=t("2025-11-10T09:00"))
    assert (c.state, c.assignee_role) == ("litigation_review", "cs_department")
    with pytest.raises(NotAuthorized):
        engine.advance(c.id, "review_litigation", "qian_guo", {"review_opinion": "x"}, at=t("2025-11-10T10:00"))
    c = engine.advance(c.id, "review_litigation", "huang_min", {"review_opinion": "同意起诉"}, at=t("2025-11-10T10:00"))
    c = engine.advance(c.id, "approve_litigation", "qian_guo", {"approval_opinion": "批准"}, at=t("2025-11-11T09:00"))
    assert (c.state, c.assignee_role) == ("litigation_preparation", "cs_supervisor")
    c = engine.advance(c.id, "file_suit", "li_qiang", {"court": "某区人民法院", "litigation_file_ref": "SS-2025-007"},
                       at=t("2025-11-20T10:00"))
    assert c.state == "in_litigation" and c.data["litigation_approved_by"] == "qian_guo"
    c = engine.advance(c.id, "conclude_litigation", "li_qiang", {"litigation_result": "调解结案"}, at=t("2026-01-15T10:00"))
    assert c.status == "completed" and c.data["outcome"] == "litigation_concluded"
    assert engine.replay(c.id).ok


# ---------------------------------------------------------------- DUN-10, DUN-11

def test_dun10_final_notice_on_last_day_of_february(engine) -> None:  # type: ignore[no-untyped-def]
    ladder = dict(posted="2026-02-02T09:00", period="2026-02", monthly_ladder=True)
    c = open_case(engine, **ladder)
    paid = open_case(engine, unit="3-0101", **ladder)
    skip_days(engine, t("2026-02-02T23:59"), t("2026-02-19T23:59"))
    engine.advance(paid.id, "record_payment", "liu_fang", {"payment_amount": "1280.00", "payment_channel": "wechat",
                   "payment_reference": "WX-20260220"}, at=t("2026-02-20T10:00"))
    skip_days(engine, t("2026-02-20T23:59"), t("2026-03-01T23:59"))
    c = engine.show(c.id)
    # The 16th falls in the Spring Festival holiday and the notice still goes out that day;
    # February has no 30th, so the final notice goes on its last day, Saturday the 28th.
    assert [local(c.data[k]) for k in ("notice1_at", "notice2_at", "final_notice_at")] == [
        "2026-02-16T09:00", "2026-02-24T09:00", "2026-02-28T09:00"]
    sent = [n["message"] for n in notifications(engine, c.id, "催费通知书")]
    assert ["《催费通知书》" in sent[0], "《二次催费通知书》" in sent[1], "《最后催费通知书》" in sent[2]] == [True] * 3
    assert "7日内" in sent[0] and "滞纳金" in sent[2] and len(sent) == 3
    paid = engine.show(paid.id)                                       # paid after the first notice: no more
    assert paid.status == "completed" and "notice2_at" not in paid.data
    assert local(paid.data["notice1_at"]) == "2026-02-16T09:00"
    # Without the ladder (the default), no notice goes out.
    plain = open_case(engine, unit="3-0202", posted="2026-02-02T09:00", period="2026-02")
    skip_days(engine, t("2026-02-02T23:59"), t("2026-02-17T23:59"))
    assert "notice1_at" not in engine.show(plain.id).data


def test_dun11_sms_reminders_ten_days_before_due_and_three_days_before_bank_deduction(engine) -> None:  # type: ignore[no-untyped-def]
    cash = open_case(engine, posted="2025-09-25T09:00", payment_method="cash", due_date="2025-10-15")
    bank = open_case(engine, posted="2025-09-25T09:00", unit="3-0301", payment_method="bank_debit",
                     debit_date="2025-10-10")
    with pytest.raises(FormInvalid, match="debit_date"):
        open_case(engine, unit="3-0401", payment_method="bank_debit")
    skip_days(engine, t("2025-09-25T23:59"), t("2025-10-04T23:59"))
    assert notifications(engine, cash.id, "短信") == []
    skip_days(engine, t("2025-10-05T23:59"), t("2025-10-08T23:59"))
    [sms] = notifications(engine, cash.id, "短信")
    assert sms["_at"].startswith("2025-10-05") and sms["recipients"] == ["chen_jing"] and "2025-10-15" in sms["message"]
    [debit] = notifications(engine, bank.id, "短信")
    assert debit["_at"].startswith("2025-10-07") and "银行代扣" in debit["message"]


# ---------------------------------------------------------------- DUN-12, DUN-13

def test_dun12_partial_payment_keeps_the_remainder_in_dunning_full_payment_ends_it(engine) -> None:  # type: ignore[no-untyped-def]
    c = in_ledger(engine)
    c = engine.advance(c.id, "classify_b", "chen_jing", call("no_answer"), at=t("2025-09-29T10:00"))
    c = engine.advance(c.id, "record_payment", "liu_fang", {"payment_amount": "500.00", "payment_channel": "front_desk",
                       "payment_reference": "SJ-1001"}, at=t("2025-09-30T10:00"))
    assert c.status == "active" and c.state == "class_b"
    assert (c.data["amount_paid"], c.data["remaining"]) == ("500.00", "780.00")
    assert notifications(engine, c.id, "尚欠 780.00")[0]["recipients"] == ["chen_jing"]
    with pytest.raises(ActionNotAllowed, match="已登记"):               # one receipt, one payment
        engine.advance(c.id, "record_payment", "liu_fang", {"payment_amount": "500.00",
                       "payment_channel": "front_desk", "payment_reference": "SJ-1001"}, at=t("2025-09-30T10:05"))
    c = engine.advance(c.id, "record_payment", "lin_cai", {"payment_amount": "780.00", "payment_channel": "transfer",
                       "payment_reference": "BK-88", "paid_at": "2025-10-08T16:00:00+08:00"}, at=t("2025-10-09T09:00"))
    assert c.status == "completed" and c.data["outcome"] == "paid" and c.data["remaining"] == "0.00"
    assert c.data["paid_in_full_at"] == "2025-10-08T16:00:00+08:00"
    assert deadline(engine, c.id, "b_daily_call")["status"] == "cancelled"
    with pytest.raises(ActionNotAllowed, match="completed"):
        engine.advance(c.id, "record_contact", "chen_jing", call(), at=t("2025-10-09T10:00"))
    # A payment at any point: even in litigation it ends the case.
    late = lawyer_letter_sent(engine)
    late = engine.advance(late.id, "record_payment", "liu_fang", {"payment_amount": "1500.00",
                          "payment_channel": "bank", "payment_reference": "BK-99"}, at=t("2025-10-20T10:00"))
    assert late.status == "completed" and late.state == "letter_sent" and late.data["remaining"] == "0.00"
    assert engine.replay(late.id).ok


def test_dun13_every_contact_is_recorded_with_time_means_result_and_staff(engine) -> None:  # type: ignore[no-untyped-def]
    c = lawyer_letter_sent(engine)
    contacts = [(e["_at"], e["_actor"], e["action"], e["input"].get("contact_means") or e["input"].get("letter_sent_via"),
                 e["input"].get("contact_result") or e["input"].get("law_firm"))
                for e in events(engine, c.id, "ActionTaken")
                if "contact_means" in e["input"] or "letter_sent_via" in e["input"]]
    assert contacts == [
        ("2025-09-29T10:00", "chen_jing", "classify_e", "phone", "拒交"),
        ("2025-09-30T10:00", "chen_jing", "record_contact", "phone", "仍拒交"),
        ("2025-09-30T16:00", "chen_jing", "mark_refusing", "phone", "第三次拒交"),
        ("2025-10-10T15:00", "li_qiang", "send_letter", "ems", "某某律师事务所"),
    ]
    assert c.data["contact_count"] == 4 and c.data["last_contact_by"] == "li_qiang"
    assert c.data["last_contact_at"] == "2025-10-10T15:00:00+08:00"
    with pytest.raises(FormInvalid):                                    # means and result are required
        engine.advance(c.id, "record_contact", "chen_jing", {"contact_means": "phone", "owner_reached": "reached"},
                       at=t("2025-10-11T10:00"))


# ---------------------------------------------------------------- guardrails (民法典 944, DUN-8/9/12)

def test_dun5_no_instruction_to_cut_water_or_power_is_accepted_or_relayed(engine) -> None:  # type: ignore[no-untyped-def]
    c = in_ledger(engine)
    c = engine.advance(c.id, "classify_e", "chen_jing", call("reached", "对服务不满，拒交", refusal_reason="service"),
                       at=t("2025-09-29T10:00"))
    for measure in ("对该户停水停电，直到缴费为止", "通知工程部停止供电"):
        with pytest.raises(ActionNotAllowed, match="第九百四十四条"):
            engine.advance(c.id, "direct_measures", "li_qiang", {"supervisor_measures": measure},
                           at=t("2025-09-29T11:00"))
    assert notifications(engine, c.id, "主管指导措施") == []              # nothing relayed to the steward
    engine.advance(c.id, "direct_measures", "li_qiang", {"supervisor_measures": "先处理服务投诉，再上门沟通"},
                   at=t("2025-09-29T11:00"))
    assert len(notifications(engine, c.id, "主管指导措施")) == 1


def test_dun8_a_lawyers_letter_needs_a_marked_refusal_or_arrears_owed_long(engine) -> None:  # type: ignore[no-untyped-def]
    c = in_ledger(engine)                                             # September's fee, in the ledger on 09-29
    c = engine.advance(c.id, "classify_b", "chen_jing", call("no_answer", "无人接听"), at=t("2025-09-29T10:00"))
    for reason in ("refusal", "long_unpaid"):                         # one unanswered call is neither
        with pytest.raises(ActionNotAllowed, match="DUN-8"):
            engine.advance(c.id, "shortlist_letter", "li_qiang", {"shortlist_reason": reason, "shortlist_note": "x"},
                           at=t("2025-09-29T10:05"))
    old = in_ledger(engine, unit="3-0101", period="2025-06")          # June's fee, owed three months by September
    old = engine.advance(old.id, "classify_b", "chen_jing", call("no_answer", "无人接听"), at=t("2025-09-29T10:00"))
    old = engine.advance(old.id, "shortlist_letter", "li_qiang", {"shortlist_reason": "long_unpaid",
                         "shortlist_note": "6月起欠费"}, at=t("2025-09-29T10:05"))
    assert old.state == "letter_review"


def test_dun9_no_suit_before_the_reasonable_period_after_the_letter(engine) -> None:  # type: ignore[no-untyped-def]
    c = lawyer_letter_sent(engine)                                     # sent 2025-10-10 15:00
    with pytest.raises(ActionNotAllowed, match="合理缴费期限"):
        engine.advance(c.id, "propose_litigation", "li_qiang", {"shortlist_reason": "refusal",
                       "shortlist_note": "x"}, at=t("2025-10-10T15:05"))
    with pytest.raises(ActionNotAllowed, match="合理缴费期限"):
        engine.advance(c.id, "propose_litigation", "li_qiang", {"shortlist_reason": "refusal",
                       "shortlist_note": "x"}, at=t("2025-11-09T14:59"))
    c = engine.advance(c.id, "propose_litigation", "li_qiang", {"shortlist_reason": "refusal",
                       "shortlist_note": "期满仍未缴"}, at=t("2025-11-09T15:00"))    # 30 days on
    assert c.state == "litigation_review"


def test_dun12_an_overpayment_is_kept_as_credit_and_finance_is_told(engine) -> None:  # type: ignore[no-untyped-def]
    c = in_ledger(engine)
    c = engine.advance(c.id, "record_payment", "liu_fang", {"payment_amount": "1300.00", "payment_channel": "wechat",
                       "payment_reference": "WX-1"}, at=t("2025-09-30T10:00"))
    assert c.status == "completed" and (c.data["remaining"], c.data["credit"]) == ("0.00", "20.00")
    [note] = notifications(engine, c.id, "多缴")
    assert note["recipients"] == ["lin_cai"] and "20.00 元" in note["message"] and "预存款" in note["message"]


def test_dun6_a_report_occurrence_is_sent_once_whatever_the_number_of_workers(engine, settings, clock) -> None:  # type: ignore[no-untyped-def]
    from engine.runtime.config import build_engine
    from engine.runtime.reports import send_due

    in_ledger(engine)
    second = build_engine(settings, clock)                            # another worker on the same database
    at = t("2025-09-29T17:31")
    sent = send_due(engine, at) + send_due(second, at) + send_due(engine, at)
    assert [(s.listed, s.recipients) for s in sent if s.report == "daily_review"] == [(1, ("li_qiang",))]
    assert [r["_at"] for r in reports(engine, "daily_review")] == ["2025-09-29T17:30"]
