"""ARC — archive loans (procedures/archive_loan.yaml), one scenario per rule, on the real calendar."""
from __future__ import annotations

from datetime import datetime

import pytest

from engine.errors import ActionNotAllowed, FormInvalid, NotAuthorized
from engine.timeskip import skip_to
from tests._rules import notices
from tests.conftest import SHANGHAI

LOAN = {"document_no": "GC-TZ-0312", "document_title": "3号楼给排水竣工图", "grade": "C", "department": "engineering",
        "borrower_kind": "staff", "borrower_name": "郑波", "borrower_department": "工程部", "purpose": "3号楼管道维修",
        "due_at": "2025-09-30T17:00:00+08:00"}
POLICE = {"document_no": "YZ-3-1201", "document_title": "3-1201业主档案", "grade": "B", "borrower_kind": "external",
          "borrower_name": "李警官", "external_body": "police", "credentials": "doc:police-id-2025-117",
          "purpose": "案件侦查", "due_at": "2025-09-30T17:00:00+08:00"}


def t(day: str, hm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _clock_before_the_scenarios(clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(t("2025-09-29", "08:00"))


def register(engine, data=LOAN):  # type: ignore[no-untyped-def]
    return engine.start("archive_loan", "gao_ya", data, at=t("2025-09-29", "10:00"))


def lent(engine, data=LOAN):  # type: ignore[no-untyped-def]
    loan = register(engine, data)
    engine.advance(loan.id, "approve_grade_c_engineering", "feng_tao", at=t("2025-09-29", "10:30"))
    return engine.advance(loan.id, "lend", "gao_ya", {"condition_at_lending": "intact"}, at=t("2025-09-29", "11:00"))


def test_arc1_loan_is_registered_and_the_return_is_checked_for_damage(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FormInvalid) as bad:
        register(engine, {k: v for k, v in LOAN.items() if k not in ("document_no", "due_at")})
    assert {e.field for e in bad.value.errors} == {"document_no", "due_at"}
    loan = lent(engine)
    assert loan.state == "on_loan" and loan.data["lent_at"] == "2025-09-29T11:00:00+08:00"
    with pytest.raises(ActionNotAllowed, match="ARC-1"):
        engine.advance(loan.id, "return_intact", "gao_ya", {"checked_complete": False}, at=t("2025-09-30", "15:00"))
    back = engine.advance(loan.id, "return_intact", "gao_ya", {"checked_complete": True}, at=t("2025-09-30", "15:00"))
    assert back.state == "closed" and back.data["returned_at"] == "2025-09-30T15:00:00+08:00"
    damaged = lent(engine)
    with pytest.raises(FormInvalid, match="borrower_explanation"):
        engine.advance(damaged.id, "return_damaged", "gao_ya", {"damage_description": "图纸第3页撕裂"},
                       at=t("2025-09-30", "16:00"))
    review = engine.advance(damaged.id, "return_damaged", "gao_ya",
                            {"damage_description": "图纸第3页撕裂", "borrower_explanation": "现场翻阅时被风刮破"},
                            at=t("2025-09-30", "16:00"))
    assert review.state == "damage_review" and review.assignee_role == "office_director"
    assert "被风刮破" in notices(engine, damaged.id)[-1]["message"]
    done = engine.advance(damaged.id, "decide_responsibility", "zhang_hua",
                          {"human_cause": True, "responsibility_decision": "借阅人负责修补"}, at=t("2025-09-30", "17:30"))
    assert done.status == "completed" and done.data["returned_damaged"] is True


APPROVER_OF = {"approve_grade_a": "qian_guo", "approve_grade_b": "zhang_hua",
               "approve_grade_c_engineering": "feng_tao", "approve_grade_c_customer_service": "li_qiang"}


@pytest.mark.parametrize("grade,department,queue,approver,action,others", [
    ("A", None, "general_manager", "qian_guo", "approve_grade_a", ["zhang_hua", "feng_tao", "li_qiang"]),
    ("B", None, "office_director", "zhang_hua", "approve_grade_b", ["qian_guo", "feng_tao", "li_qiang"]),
    ("C", "engineering", "engineering_manager", "feng_tao", "approve_grade_c_engineering", ["li_qiang", "zhang_hua"]),
    ("C", "customer_service", "cs_supervisor", "li_qiang", "approve_grade_c_customer_service", ["feng_tao"]),
])
def test_arc2_approval_by_confidentiality_grade(engine, grade, department, queue, approver, action,  # type: ignore[no-untyped-def]
                                               others) -> None:
    data = {**LOAN, "grade": grade}
    data.pop("department")
    if department:
        data["department"] = department
    loan = register(engine, data)
    assert loan.assignee_role == queue
    all_approvals = ["approve_grade_a", "approve_grade_b", "approve_grade_c_engineering",
                     "approve_grade_c_customer_service"]
    for person in others:                       # anyone else is refused: by the grade guard when the
        for other_action in all_approvals:      # action is theirs to take, else by role
            refusal = ActionNotAllowed if APPROVER_OF[other_action] == person else NotAuthorized
            with pytest.raises(refusal):
                engine.advance(loan.id, other_action, person, at=t("2025-09-29", "10:20"))
    ok = engine.advance(loan.id, action, approver, at=t("2025-09-29", "10:30"))
    assert ok.state == "approved" and ok.data["approved_by"] == approver and ok.assignee_role == "archive_keeper"


def test_arc2_grade_c_needs_the_department_that_owns_the_document(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FormInvalid, match="department"):
        register(engine, {k: v for k, v in LOAN.items() if k != "department"})
    loan = register(engine)
    refused = engine.advance(loan.id, "reject", "feng_tao", {"rejection_reason": "维修无需原图，可提供复印件"},
                             at=t("2025-09-29", "10:30"))
    assert refused.state == "rejected" and refused.status == "completed"


def test_arc3_overdue_loans_are_chased_by_the_archive_keeper(engine, clock) -> None:  # type: ignore[no-untyped-def]
    loan = lent(engine)
    with pytest.raises(ActionNotAllowed):
        engine.advance(loan.id, "chase", "gao_ya", {"chase_method": "phone", "chase_note": "x"},
                       at=t("2025-09-30", "10:00"))                   # not due yet
    skip_to(engine, t("2025-09-30", "16:59"))
    assert engine.show(loan.id).data["overdue"] is False
    skip_to(engine, t("2025-09-30", "17:01"))
    assert engine.show(loan.id).data["overdue"] is True
    first = notices(engine, loan.id)[-1]
    assert first["recipients"] == ["gao_ya"] and "借阅逾期" in first["message"]
    for day in ("2025-10-01", "2025-10-03", "2025-10-08"):              # National Day: no reminders
        skip_to(engine, t(day, "10:30"))
    assert len(notices(engine, loan.id)) == 1
    skip_to(engine, t("2025-10-09", "10:30"))                       # first workday after the holiday
    engine.advance(loan.id, "chase", "gao_ya", {"chase_method": "phone", "chase_note": "郑波答应明天归还"},
                   at=t("2025-10-09", "11:00"))
    skip_to(engine, t("2025-10-10", "10:30"))
    skip_to(engine, t("2025-10-11", "10:30"))                       # make-up Saturday: reminded too
    reminders = [n for n in notices(engine, loan.id) if "仍未归还" in n["message"]]
    assert len(reminders) == 3 and "已催还 1 次" in reminders[-1]["message"]
    with pytest.raises(NotAuthorized):
        engine.advance(loan.id, "chase", "zhang_hua", {"chase_method": "visit", "chase_note": "x"},
                       at=t("2025-10-11", "11:00"))
    back = engine.advance(loan.id, "return_intact", "gao_ya", {"checked_complete": True}, at=t("2025-10-11", "15:00"))
    assert back.data["overdue"] is True and back.data["chases"] == 1
    assert {d["name"]: d["status"] for d in engine.deadlines(loan.id)} == {"due": "fired", "chase_reminder": "cancelled"}


def test_arc4_outside_bodies_only_with_verified_credentials_and_the_general_managers_consent(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FormInvalid) as bad:
        register(engine, {k: v for k, v in POLICE.items() if k not in ("credentials", "external_body")})
    assert {e.field for e in bad.value.errors} == {"credentials", "external_body"}
    with pytest.raises(FormInvalid, match="external_body"):
        register(engine, {**POLICE, "external_body": "newspaper"})
    loan = register(engine, POLICE)
    assert loan.assignee_role == "office_director"                      # credentials first
    with pytest.raises(ActionNotAllowed, match="ARC-4"):
        engine.advance(loan.id, "approve_grade_a", "qian_guo", at=t("2025-09-29", "10:10"))
    with pytest.raises(ActionNotAllowed, match="ARC-2"):
        engine.advance(loan.id, "approve_grade_b", "zhang_hua", at=t("2025-09-29", "10:10"))   # B, but external
    with pytest.raises(ActionNotAllowed, match="ARC-4"):
        engine.advance(loan.id, "verify_credentials", "zhang_hua",
                       {"credentials_verified": False, "verification_note": "证件过期"}, at=t("2025-09-29", "10:15"))
    checked = engine.advance(loan.id, "verify_credentials", "zhang_hua",
                             {"credentials_verified": True, "verification_note": "警官证 No.117 已登记"},
                             at=t("2025-09-29", "10:20"))
    assert checked.assignee_role == "general_manager" and notices(engine, loan.id)[-1]["recipients"] == ["qian_guo"]
    with pytest.raises(NotAuthorized):
        engine.advance(loan.id, "approve_grade_a", "zhang_hua", at=t("2025-09-29", "10:25"))
    ok = engine.advance(loan.id, "approve_grade_a", "qian_guo", at=t("2025-09-29", "10:30"))
    assert ok.state == "approved" and ok.data["approved_by"] == "qian_guo"
    staff_verify = register(engine)
    with pytest.raises(ActionNotAllowed, match="ARC-4"):
        engine.advance(staff_verify.id, "verify_credentials", "zhang_hua",
                       {"credentials_verified": True, "verification_note": "x"}, at=t("2025-09-29", "10:40"))
