"""Complaint (CMP) and callback (CBK) rules, scenario by scenario, through the engine API.

Every step goes through :class:`Office`, which moves the clock on a few minutes, runs the
command and then replays the instance's log: after each step the replay must equal the
stored instance (conventions.md, "Tests"). Rule texts are in /work/shared/spec/procedures.md.
CMP-3 and CMP-4 (reply deadlines) are proven with the SLA clocks in the timer tests.
"""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Optional

import pytest

from engine.core.model import Instance
from engine.errors import ActionNotAllowed, FormInvalid, NotAuthorized

NAMED = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
         "content": "楼上漏水，天花板渗水", "anonymous": False}
ANONYMOUS = {"channel": "letter", "content": "夜间装修噪音扰民", "anonymous": True}
FINDINGS = {"findings": "4-1301 卫生间防水层破损", "cause": "防水老化", "responsibility": "owner"}
REPLY = {"reply_method": "phone", "reply_summary": "已安排工程部上门维修"}
RESULT = {"handling_result": "漏水已处理"}
VISIT = {"method": "visit", "satisfaction": "satisfied", "callback_notes": "业主表示满意",
         "owner_signature": "sig:王先生-20251009"}
PHONE = {"method": "phone", "satisfaction": "satisfied", "callback_notes": "电话确认已修好"}


class Office:
    """The engine as staff use it, with the clock moving on and a replay check after each step."""

    def __init__(self, engine: Any, clock: Any) -> None:
        self.engine, self.clock = engine, clock

    def tick(self, minutes: int = 5) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    def start(self, procedure: str, staff: str, data: dict[str, Any]) -> Instance:
        self.tick()
        inst = self.engine.start(procedure, staff, data)
        self.replays(inst.id)
        return inst

    def act(self, iid: int, action: str, staff: str, data: Optional[dict[str, Any]] = None) -> Instance:
        self.tick()
        inst = self.engine.advance(iid, action, staff, data or {})
        self.replays(iid)
        return inst

    def refused(self, exc: type, iid: int, action: str, staff: str,
                data: Optional[dict[str, Any]] = None) -> Exception:
        """The command is refused and the instance and its log stay exactly as they were."""
        before, log = self.engine.show(iid), self.history(iid)
        self.tick()
        with pytest.raises(exc) as e:
            self.engine.advance(iid, action, staff, data or {})
        assert self.engine.show(iid) == before
        assert self.history(iid) == log
        return e.value

    def replays(self, iid: int) -> None:
        r = self.engine.replay(iid)
        assert r.ok, f"replay of #{iid} differs at seq {r.seq}: {r.difference}"

    def history(self, iid: int) -> list[dict[str, Any]]:
        return [{"seq": e.seq, "type": e.type, "actor": e.actor, "role": e.role,
                 "data": json.loads(e.data_json)} for e in self.engine.history(iid)]

    def messages(self, iid: int) -> list[tuple[list[str], str]]:
        return [(e["data"]["recipients"], e["data"]["message"]) for e in self.history(iid)
                if e["type"] == "NotificationQueued"]

    def complaint_replied(self, data: dict[str, Any] = NAMED, reply: dict[str, Any] = REPLY) -> Instance:
        c = self.start("complaint", "liu_fang", data)
        steward = c.assignee or "li_qiang"
        self.act(c.id, "investigate", steward)
        return self.act(c.id, "reply", steward, reply)

    def callback_for_named_complaint(self) -> tuple[Instance, Instance]:
        c = self.complaint_replied()
        c = self.act(c.id, "resolve", "chen_jing", RESULT)
        return c, self.engine.show(c.children[0])


@pytest.fixture
def office(engine, clock) -> Office:  # type: ignore[no-untyped-def]
    return Office(engine, clock)


# ------------------------------------------------------------------ CMP — complaints

def test_cmp1_every_complaint_is_recorded_with_owner_unit_contact_channel_content_receiver(office: Office) -> None:
    c = office.start("complaint", "liu_fang", NAMED)
    for key in ("unit", "owner_name", "contact", "channel", "content"):
        assert c.data[key] == NAMED[key]
    assert c.data["receiver"] == "liu_fang"
    assert office.history(c.id)[0]["type"] == "InstanceStarted"
    assert office.history(c.id)[0]["data"]["data"]["content"] == NAMED["content"]


def test_cmp1_a_named_complaint_without_unit_owner_or_contact_is_refused(office: Office) -> None:
    with pytest.raises(FormInvalid) as e:
        office.start("complaint", "liu_fang", {"channel": "visit", "content": "电梯故障"})
    assert {(f.field, f.reason.split(" (")[0]) for f in e.value.errors} == {
        ("unit", "required when not anonymous"), ("owner_name", "required when not anonymous"),
        ("contact", "required when not anonymous")}
    assert office.engine.tasks(role="steward") == []


def test_cmp1_channel_and_content_are_always_required(office: Office) -> None:
    with pytest.raises(FormInvalid) as e:
        office.start("complaint", "liu_fang", {"anonymous": True})
    assert {f.field for f in e.value.errors} == {"channel", "content"}


def test_cmp2_the_receiver_is_on_record_with_department_and_contact(office: Office) -> None:
    c = office.start("complaint", "zhou_min", {**NAMED, "receiver_contact": "13800000002"})
    assert (c.data["receiver"], c.data["receiver_department"], c.data["receiver_contact"]) == \
        ("zhou_min", "客服部", "13800000002")
    with pytest.raises(FormInvalid, match="receiver_contact: not a valid value"):
        office.start("complaint", "zhou_min", {**NAMED, "receiver_contact": "call me"})


def test_cmp2_the_complaint_goes_to_the_steward_of_the_units_building(office: Office) -> None:
    assert office.start("complaint", "liu_fang", NAMED).assignee == "chen_jing"          # building 3
    assert office.start("complaint", "liu_fang", {**NAMED, "unit": "7-301"}).assignee == "sun_yan"
    assert [t.id for t in office.engine.tasks(staff="chen_jing")] == [1]


def test_cmp5_findings_cause_and_responsibility_are_recorded(office: Office) -> None:
    c = office.start("complaint", "liu_fang", NAMED)
    c = office.act(c.id, "investigate", "chen_jing")
    assert c.state == "investigating"
    err = office.refused(FormInvalid, c.id, "record_findings", "chen_jing", {"findings": "看过了"})
    assert {f.field for f in err.errors} == {"cause", "responsibility"}
    office.refused(FormInvalid, c.id, "record_findings", "chen_jing", {**FINDINGS, "responsibility": "nobody"})
    c = office.act(c.id, "record_findings", "chen_jing", FINDINGS)
    assert {k: c.data[k] for k in FINDINGS} == FINDINGS


def test_cmp6_dispatch_to_another_department_with_a_time_limit_and_follow_to_the_end(office: Office) -> None:
    c = office.start("complaint", "liu_fang", NAMED)
    office.refused(FormInvalid, c.id, "dispatch", "chen_jing", {"department": "engineering", "instructions": "修"})
    office.refused(FormInvalid, c.id, "dispatch", "chen_jing",  # a time limit needs its offset
                   {"department": "engineering", "limit_at": "2025-09-30T17:00:00", "instructions": "修"})
    c = office.act(c.id, "dispatch", "chen_jing", {"department": "engineering", "instructions": "上门检修防水",
                                                  "limit_at": "2025-09-30T17:00:00+08:00"})
    assert (c.state, c.assignee) == ("dispatched", "chen_jing")   # customer service keeps following it
    assert (["li_qiang"], "投诉单 1 已派 engineering，限 2025-09-30T17:00:00+08:00 前完成。") in office.messages(c.id)
    office.refused(NotAuthorized, c.id, "department_done", "lin_cai", {"department_result": "不归我们管"})
    c = office.act(c.id, "department_done", "wu_gang", {"department_result": "已更换防水层"})
    assert (c.state, c.assignee) == ("investigating", "chen_jing")
    assert office.history(c.id)[-1]["role"] == "engineering"


def test_cmp7_steward_reports_up_to_supervisor_then_director(office: Office) -> None:
    c = office.start("complaint", "liu_fang", NAMED)
    office.refused(NotAuthorized, c.id, "escalate_to_supervisor", "li_qiang")   # stewards report up
    c = office.act(c.id, "escalate_to_supervisor", "chen_jing")
    assert (c.data["level"], c.assignee, c.assignee_role) == ("supervisor", None, "cs_supervisor")
    assert [t.id for t in office.engine.tasks(role="cs_supervisor")] == [c.id]
    assert office.messages(c.id)[-1][0] == ["li_qiang"]
    office.tick()
    c = office.engine.claim(c.id, "li_qiang")
    assert c.assignee == "li_qiang"
    c = office.act(c.id, "escalate_to_director", "li_qiang")
    assert (c.data["level"], c.assignee, c.assignee_role) == ("director", None, "office_director")
    assert office.messages(c.id)[-1] == (["zhang_hua"], "投诉单 1（3-1201）已上报管理处主任：楼上漏水，天花板渗水")


def test_cmp7_important_events_go_to_the_office_director_at_once_from_any_state(office: Office) -> None:
    c = office.start("complaint", "liu_fang", NAMED)
    c = office.act(c.id, "dispatch", "chen_jing", {"department": "security", "instructions": "查监控",
                                                  "limit_at": "2025-09-30T12:00:00+08:00"})
    c = office.act(c.id, "report_important", "liu_fang")
    assert (c.state, c.data["priority"]) == ("dispatched", "high")
    assert office.messages(c.id)[-1] == (["zhang_hua"], "重大投诉事件，单号 1：楼上漏水，天花板渗水")


def test_cmp8_commitment_needs_superior_decision(office: Office) -> None:
    c = office.start("complaint", "liu_fang", NAMED)
    c = office.act(c.id, "investigate", "chen_jing")
    promise = {**REPLY, "commitment": "免费更换天花板"}
    err = office.refused(ActionNotAllowed, c.id, "reply", "chen_jing", promise)
    assert err.reason == "超出权限的承诺须先请示上级并获同意（CMP-8）"
    c = office.act(c.id, "request_decision", "chen_jing", {"proposed_commitment": "免费更换天花板"})
    assert (c.state, c.assignee_role) == ("awaiting_decision", "cs_supervisor")
    office.refused(NotAuthorized, c.id, "decide_commitment", "chen_jing", {"superior_decision": "approved"})
    c = office.act(c.id, "decide_commitment", "li_qiang", {"superior_decision": "approved"})
    assert (c.state, c.assignee) == ("investigating", "chen_jing")   # back to the steward who asked
    c = office.act(c.id, "reply", "chen_jing", promise)
    assert (c.state, c.data["commitment"]) == ("replied", "免费更换天花板")


def test_cmp8_a_declined_commitment_cannot_be_promised(office: Office) -> None:
    c = office.start("complaint", "liu_fang", NAMED)
    office.act(c.id, "request_decision", "chen_jing", {"proposed_commitment": "赔偿 5000 元"})
    office.act(c.id, "decide_commitment", "zhang_hua", {"superior_decision": "declined", "decision_note": "不同意"})
    office.refused(ActionNotAllowed, c.id, "reply", "chen_jing", {**REPLY, "commitment": "赔偿 5000 元"})
    assert office.act(c.id, "reply", "chen_jing", REPLY).state == "replied"


def test_cmp8_at_director_level_the_director_may_commit(office: Office) -> None:
    c = office.start("complaint", "liu_fang", NAMED)
    office.act(c.id, "escalate_to_director", "chen_jing")
    c = office.act(c.id, "reply", "zhang_hua", {**REPLY, "commitment": "下周内更换"})
    assert c.state == "replied"


def test_cmp9_resolving_a_named_complaint_starts_a_linked_callback(office: Office) -> None:
    c, cb = office.callback_for_named_complaint()
    assert (c.state, c.children, cb.parent_id) == ("resolved", (cb.id,), c.id)
    assert (cb.procedure, cb.state, cb.assignee_role) == ("callback", "pending", "cs_supervisor")
    assert {k: cb.data[k] for k in ("source_procedure", "source_id", "unit", "owner_name", "contact", "matter")} == \
        {"source_procedure": "complaint", "source_id": c.id, "unit": "3-1201", "owner_name": "王先生",
         "contact": "13912345678", "matter": NAMED["content"]}
    spawned = [e for e in office.history(c.id) if e["type"] == "ChildSpawned"]
    assert [e["data"] for e in spawned] == [{"child_id": cb.id, "procedure": "callback"}]
    # The person whose action spawned the callback is on record as its starter.
    assert office.history(cb.id)[0]["actor"] == "chen_jing"  # the steward who resolved it
    office.replays(cb.id)


def test_cmp9_and_cmp13_the_whole_complaint_closes_after_callback_and_effect_check(office: Office) -> None:
    c, cb = office.callback_for_named_complaint()
    office.act(cb.id, "record_callback", "li_qiang", VISIT)
    office.act(cb.id, "check", "li_qiang", {"check_passed": True})
    cb = office.act(cb.id, "sign_opinion", "zhang_hua", {"opinion": "同意", "head_signature": "sig:张华"})
    assert (cb.state, cb.status) == ("closed", "completed")
    c = office.act(c.id, "check_effect", "li_qiang", {"effective": True})
    assert (c.state, c.status) == ("closed", "completed")
    assert office.history(c.id)[-1]["type"] == "InstanceCompleted"
    assert office.engine.tasks(staff="li_qiang") == []


def test_cmp10_a_repeated_complaint_raises_priority_reports_and_goes_to_the_first_receiver(office: Office) -> None:
    first = office.start("complaint", "liu_fang", NAMED)
    assert first.data["priority"] == "normal"
    again = office.start("complaint", "zhou_min", {**NAMED, "repeat_of": first.id, "first_receiver": "wang_li"})
    assert again.data["priority"] == "high"
    assert again.assignee == "wang_li"      # not chen_jing, the steward of building 3
    assert office.messages(again.id) == [
        (["li_qiang"], f"重复投诉：3-1201 王先生 再次投诉（原投诉单 {first.id}），单号 {again.id}。")]


def test_cmp10_without_a_known_first_receiver_the_repeat_still_goes_up(office: Office) -> None:
    first = office.start("complaint", "liu_fang", NAMED)
    again = office.start("complaint", "liu_fang", {**NAMED, "repeat_of": first.id})
    assert (again.data["priority"], again.assignee) == ("high", "chen_jing")
    assert office.messages(again.id)[0][0] == ["li_qiang"]


def test_cmp11_one_open_letter_answers_several_owners_and_is_filed_with_the_callback(office: Office) -> None:
    letter = {"reply_method": "open_letter", "reply_summary": "关于电梯维修的公开信"}
    c = office.start("complaint", "liu_fang", NAMED)
    err = office.refused(FormInvalid, c.id, "reply", "chen_jing", letter)
    assert [(f.field, f.reason) for f in err.errors] == \
        [("open_letter_ref", "required when reply_method == 'open_letter' (公开信编号)")]
    owners = [c] + [office.start("complaint", "liu_fang", {**NAMED, "unit": u, "owner_name": n})
                    for u, n in (("3-1502", "李女士"), ("4-0801", "赵先生"))]
    for o in owners:
        office.act(o.id, "reply", "chen_jing", {**letter, "open_letter_ref": "GKX-2025-07"})
        o = office.act(o.id, "resolve", "chen_jing", RESULT)
        callback = office.engine.show(o.children[0])
        assert callback.data["open_letter_ref"] == "GKX-2025-07"


def test_cmp12_an_anonymous_complaint_needs_no_callback_but_its_result_is_recorded(office: Office) -> None:
    c = office.start("complaint", "zhou_min", ANONYMOUS)
    assert (c.assignee, c.assignee_role) == (None, "cs_supervisor")
    assert "unit" not in c.data
    office.tick()
    office.engine.claim(c.id, "li_qiang")
    office.act(c.id, "reply", "li_qiang", {"reply_method": "letter", "reply_summary": "已张贴装修时间规定"})
    err = office.refused(FormInvalid, c.id, "resolve", "li_qiang", {})
    assert [(f.field, f.reason) for f in err.errors] == [("handling_result", "required")]
    c = office.act(c.id, "resolve", "li_qiang", {"handling_result": "已约谈装修户"})
    assert (c.state, c.children, c.data["handling_result"]) == ("resolved", (), "已约谈装修户")
    c = office.act(c.id, "check_effect", "li_qiang", {"effective": True})
    assert c.status == "completed"


def test_cmp13_the_cs_manager_checks_the_effect(office: Office) -> None:
    c, cb = office.callback_for_named_complaint()
    # The resolved complaint leaves the steward's list for the CS supervisor's queue.
    assert (c.assignee, c.assignee_role) == (None, "cs_supervisor")
    assert c.id not in [t.id for t in office.engine.tasks(staff="chen_jing")]
    assert c.id in [t.id for t in office.engine.tasks(role="cs_supervisor")]
    office.refused(NotAuthorized, c.id, "check_effect", "chen_jing", {"effective": True})
    # CMP-9: not before the mandatory callback is done.
    err = office.refused(ActionNotAllowed, c.id, "check_effect", "li_qiang", {"effective": True})
    assert "CMP-9" in str(err)
    office.act(cb.id, "record_callback", "li_qiang", VISIT)
    office.act(cb.id, "check", "li_qiang", {"check_passed": True})
    office.act(cb.id, "sign_opinion", "zhang_hua", {"opinion": "同意", "head_signature": "sig:张华"})
    office.refused(FormInvalid, c.id, "check_effect", "li_qiang", {"check_note": "还没看"})
    c = office.act(c.id, "check_effect", "zhang_hua", {"effective": False, "check_note": "效果一般"})
    assert (c.state, c.data["effective"]) == ("closed", False)


# ------------------------------------------------------------------ CBK — callbacks

def test_cbk1_the_cs_supervisor_is_responsible_for_the_callback(office: Office) -> None:
    _, cb = office.callback_for_named_complaint()
    assert (cb.assignee, cb.assignee_role) == (None, "cs_supervisor")
    assert cb.id in [t.id for t in office.engine.tasks(staff="li_qiang")]
    assert cb.id not in [t.id for t in office.engine.tasks(staff="chen_jing")]
    office.tick()
    with pytest.raises(NotAuthorized):
        office.engine.claim(cb.id, "chen_jing")
    office.tick()
    assert office.engine.claim(cb.id, "li_qiang").assignee == "li_qiang"
    office.replays(cb.id)


def test_cbk2_visit_callback_requires_owner_signature(office: Office) -> None:
    _, cb = office.callback_for_named_complaint()
    unsigned = {k: v for k, v in VISIT.items() if k != "owner_signature"}
    err = office.refused(FormInvalid, cb.id, "record_callback", "li_qiang", unsigned)
    assert [(f.field, f.reason) for f in err.errors] == \
        [("owner_signature", "required when method == 'visit' (业主签名)")]
    cb = office.act(cb.id, "record_callback", "li_qiang", VISIT)
    assert (cb.state, cb.data["record_label"], cb.data["owner_signature"]) == \
        ("recorded", "上门回访", "sig:王先生-20251009")


def test_cbk2_phone_callback_needs_no_signature_and_is_recorded_as_phone_callback(office: Office) -> None:
    _, cb = office.callback_for_named_complaint()
    cb = office.act(cb.id, "record_callback", "chen_jing", PHONE)
    assert (cb.state, cb.data["record_label"]) == ("recorded", "电话回访")
    assert "owner_signature" not in cb.data


def test_cbk3_the_cs_head_checks_and_the_office_head_signs_an_opinion(office: Office) -> None:
    _, cb = office.callback_for_named_complaint()
    office.act(cb.id, "record_callback", "li_qiang", PHONE)
    office.refused(NotAuthorized, cb.id, "check", "chen_jing", {"check_passed": True})
    err = office.refused(ActionNotAllowed, cb.id, "check", "li_qiang", {"check_passed": False})
    assert err.reason == "检查不合格时请退回重新回访（redo）"
    cb = office.act(cb.id, "check", "li_qiang", {"check_passed": True, "check_note": "记录完整"})
    assert (cb.state, cb.assignee_role) == ("checked", "office_director")
    office.refused(NotAuthorized, cb.id, "sign_opinion", "li_qiang", {"opinion": "同意", "head_signature": "sig:李强"})
    office.refused(FormInvalid, cb.id, "sign_opinion", "zhang_hua", {"opinion": "同意"})
    cb = office.act(cb.id, "sign_opinion", "zhang_hua", {"opinion": "同意", "head_signature": "sig:张华"})
    assert cb.status == "completed"


def test_cbk3_unsatisfactory_callback_work_is_sent_back(office: Office) -> None:
    _, cb = office.callback_for_named_complaint()
    office.act(cb.id, "record_callback", "chen_jing", PHONE)
    cb = office.act(cb.id, "redo", "li_qiang")
    assert (cb.state, cb.assignee_role) == ("pending", "cs_supervisor")
    cb = office.act(cb.id, "record_callback", "li_qiang", VISIT)
    assert cb.data["record_label"] == "上门回访"


def test_cbk4_a_new_matter_gets_an_answer_time(office: Office) -> None:
    _, cb = office.callback_for_named_complaint()
    new = {**PHONE, "new_matter": "车库照明不足"}
    err = office.refused(FormInvalid, cb.id, "record_callback", "li_qiang", new)
    assert [f.field for f in err.errors] == ["new_matter_answer_by"]
    cb = office.act(cb.id, "record_callback", "li_qiang", {**new, "new_matter_answer_by": "2025-10-10T17:00:00+08:00"})
    assert cb.children == ()
    assert office.messages(cb.id) == [
        (["li_qiang"], f"回访单 {cb.id}：业主提出新意见，须于 2025-10-10T17:00:00+08:00 前答复：车库照明不足")]


def test_cbk4_a_new_matter_can_open_a_new_complaint(office: Office) -> None:
    _, cb = office.callback_for_named_complaint()
    cb = office.act(cb.id, "record_callback", "li_qiang",
                    {**PHONE, "new_matter": "车库照明不足", "open_new_complaint": True})
    assert len(cb.children) == 1
    new = office.engine.show(cb.children[0])
    assert (new.procedure, new.parent_id, new.state, new.assignee) == ("complaint", cb.id, "received", "chen_jing")
    assert (new.data["content"], new.data["channel"], new.data["receiver"]) == ("车库照明不足", "phone", "li_qiang")
    office.replays(new.id)


def test_cbk5_every_matter_has_an_outcome_and_a_closed_callback_accepts_nothing(office: Office) -> None:
    _, cb = office.callback_for_named_complaint()
    office.act(cb.id, "record_callback", "li_qiang", PHONE)
    office.act(cb.id, "check", "li_qiang", {"check_passed": True})
    cb = office.act(cb.id, "sign_opinion", "zhang_hua", {"opinion": "同意", "head_signature": "sig:张华"})
    assert (cb.state, cb.status) == ("closed", "completed")
    err = office.refused(ActionNotAllowed, cb.id, "redo", "li_qiang")
    assert err.reason == f"instance {cb.id} is completed"
    assert office.engine.tasks(role="office_director") == []


def test_cbk6_a_repair_is_followed_by_a_callback_too(office: Office) -> None:
    cb = office.start("callback", "li_qiang", {"source_procedure": "repair", "source_id": 7, "unit": "5-0202",
                                                "matter": "厨房水管漏水维修"})
    assert (cb.state, cb.assignee_role, cb.data["source_procedure"]) == ("pending", "cs_supervisor", "repair")
    cb = office.act(cb.id, "record_callback", "li_qiang", {**PHONE, "satisfaction": "very_satisfied"})
    assert cb.data["satisfaction"] == "very_satisfied"


def test_cmp10_a_repeat_must_name_a_stored_complaint_and_a_known_first_receiver(office: Office) -> None:
    first = office.start("complaint", "liu_fang", NAMED)
    with pytest.raises(FormInvalid) as err:
        office.start("complaint", "zhou_min", {**NAMED, "repeat_of": 999})
    assert [(e.field, e.reason) for e in err.value.errors] == [("repeat_of", "no complaint #999")]
    with pytest.raises(FormInvalid) as err:
        office.start("complaint", "zhou_min", {**NAMED, "repeat_of": first.id, "first_receiver": "wangli"})
    assert [(e.field, e.reason) for e in err.value.errors] == [
        ("first_receiver", "no staff member 'wangli' in the organisation file (did you mean 'wang_li'?)")]
    again = office.start("complaint", "zhou_min", {**NAMED, "repeat_of": first.id, "first_receiver": "wang_li"})
    assert (again.assignee, again.data["priority"]) == ("wang_li", "high")
