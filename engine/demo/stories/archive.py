"""Archive loans (ARC): drawings returned late, police borrowing a file, refused loans."""
from __future__ import annotations

from typing import Any

from engine.demo.player import Demo, Story
from engine.demo.stories.common import iso, story


def loan(d: Demo, document_no: str, title: str, grade: str, borrower: str, borrower_department: str, purpose: str,
         due: str, **more: Any) -> int:
    return d.start("archive_loan", "gao_ya", {
        "document_no": document_no, "document_title": title, "grade": grade, "borrower_kind": "staff",
        "borrower_name": borrower, "borrower_department": borrower_department, "purpose": purpose,
        "due_at": iso(due), **more}).id


@story
def drawings_returned_late(d: Demo) -> Story:
    """ARC-1..3: engineering drawings (grade C) approved by the engineering head, overdue and chased."""
    yield d.at("09-16 11:00")
    a = loan(d, "GC-TZ-0312", "3号楼给排水竣工图", "C", "郑波", "工程部", "排查3-1201渗水", "09-19 17:00",
             department="engineering")
    yield d.at("09-16 11:20")
    d.act(a, "approve_grade_c_engineering", "feng_tao")
    d.act(a, "lend", "gao_ya", {"condition_at_lending": "intact"})
    yield d.at("09-22 10:30")
    d.act(a, "chase", "gao_ya", {"chase_method": "phone", "chase_note": "郑波答应明早归还"})
    yield d.at("09-23 09:40")
    d.act(a, "return_intact", "gao_ya", {"checked_complete": True})
    d.note(f"档案借阅 #{a}：竣工图 09-19 到期未还，09-22 每日催还提醒后催还，09-23 归还完好（ARC-3）")


@story
def police_borrow_an_owner_file(d: Demo) -> Story:
    """ARC-4: the police, with verified credentials and the general manager's consent."""
    yield d.at("09-24 15:00")
    a = d.start("archive_loan", "gao_ya", {
        "document_no": "YZ-6-0601", "document_title": "6-0601业主档案", "grade": "B", "borrower_kind": "external",
        "borrower_name": "王警官", "external_body": "police", "credentials": "doc:police-2025-0924",
        "purpose": "案件调查", "due_at": iso("09-26 17:00")}).id
    yield d.at("09-24 15:20")
    d.act(a, "verify_credentials", "zhang_hua", {"credentials_verified": True, "verification_note": "警官证及介绍信已核验登记"})
    yield d.at("09-24 16:00")
    d.act(a, "approve_grade_a", "qian_guo")
    d.act(a, "lend", "gao_ya", {"condition_at_lending": "intact"})
    yield d.at("09-26 11:00")
    d.act(a, "return_intact", "gao_ya", {"checked_complete": True})
    d.note(f"档案借阅 #{a}：公安机关借阅业主档案，办公室主任核验证件、总经理同意后借出（ARC-4）")


@story
def financial_statements_damaged(d: Demo) -> Story:
    """ARC-1, 2: grade A approved by the general manager; returned damaged, responsibility decided."""
    yield d.at("09-25 09:30")
    a = loan(d, "CW-2025-H1", "2025年上半年财务报表", "A", "林彩", "财务部", "年度审计准备", "10-10 17:00")
    yield d.at("09-25 11:00")
    d.act(a, "approve_grade_a", "qian_guo")
    yield d.at("09-25 14:00")
    d.act(a, "lend", "gao_ya", {"condition_at_lending": "intact"})
    yield d.at("10-10 16:00")
    d.act(a, "return_damaged", "gao_ya", {"damage_description": "第12页被茶水污染", "borrower_explanation": "加班时茶杯打翻"})
    yield d.at("10-11 10:00")
    d.act(a, "decide_responsibility", "zhang_hua", {"human_cause": True, "responsibility_decision": "借阅人负责复印补档，通报批评"})


@story
def loans_refused_and_still_out(d: Demo) -> Story:
    """ARC-2: a grade-C request refused by its department head; another still on loan at month end."""
    yield d.at("10-09 10:00")
    a = loan(d, "KF-NY-2024-07", "2024年投诉台账", "C", "周敏", "客服部", "整理投诉案例", "10-16 17:00",
             department="customer_service")
    yield d.at("10-09 11:00")
    d.act(a, "reject", "li_qiang", {"rejection_reason": "涉及业主个人信息，请使用脱敏汇总表"})
    yield d.at("10-13 10:00")
    b = loan(d, "GC-TZ-0508", "5号楼电气竣工图", "C", "吴刚", "工程部", "5号楼配电箱改造", "10-20 17:00",
             department="engineering")
    yield d.at("10-13 10:30")
    d.act(b, "approve_grade_c_engineering", "feng_tao")
    d.act(b, "lend", "gao_ya", {"condition_at_lending": "intact"})
