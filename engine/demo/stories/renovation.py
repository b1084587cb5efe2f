"""Renovation (REN): a unit's works from application to acceptance, and the patrols."""
from __future__ import annotations

from typing import Any

from engine.demo.player import Demo, Story
from engine.demo.stories.common import iso, owner, story


RENOVATION_ITEMS = ("structure_intact", "use_unchanged", "waterproofing_intact", "floor_load_ok", "light_partitions",
                    "public_areas_free", "ac_units_placed", "no_awnings", "fireproof_materials", "facade_unchanged")


def plan_checks(failed: str = "", note: str = "") -> dict[str, Any]:
    return {k: ({"result": "fail", "note": note} if k == failed else {"result": "pass"}) for k in RENOVATION_ITEMS}


@story
def renovation_2_1101(d: Demo) -> Story:
    """REN-1..3, 5..7: a renovation: plan returned once, a noise violation escalated, accepted and archived."""
    yield d.at("09-15 09:30")
    r = d.ids["renovation"] = d.start("renovation", "liu_fang", {
        **owner("2-1101"), "plan_summary": "厨卫翻新、客厅吊顶、阳台封窗", "plan_drawings": "doc:plan-2-1101",
        "planned_start": "2025-09-18", "planned_end": "2025-10-13"}).id
    d.act(r, "explain_rules", "wang_li", {"rules_explained": True, "noise_hours_explained": True,
                                          "owner_acknowledgement": "sig:赵雪"})
    yield d.at("09-15 14:00")
    d.act(r, "return_plan", "wang_li", {"plan_checks": plan_checks("no_awnings", "阳台外拟搭雨篷"),
                                        "return_reasons": "阳台外不得搭建雨篷，请修改方案"})
    d.note(f"装修 #{r}：2-1101 方案审核不通过（阳台雨篷），退回修改（REN-2）")
    yield d.at("09-16 10:00")
    d.act(r, "resubmit_plan", "liu_fang", {"plan_drawings": "doc:plan-2-1101-v2", "revision_note": "取消阳台雨篷"})
    yield d.at("09-16 15:00")
    d.act(r, "approve_plan", "wang_li", {"plan_checks": plan_checks()})
    yield d.at("09-17 10:00")
    d.act(r, "review_contractor", "wang_li", {
        "contractor_name": "美家装饰", "contractor_licence": "doc:licence-meijia",
        "contractor_qualification": "doc:q-meijia",
        "site_manager": "刘工", "site_manager_phone": "13700000000", "documents_complete": True})
    d.act(r, "sign_agreement", "wang_li", {"agreement_ref": "doc:zx-2-1101", "owner_signature": "sig:赵雪",
                                           "contractor_signature": "sig:美家装饰", "deposit": "2000.00"})
    yield d.at("09-18 08:30")
    d.act(r, "issue_passes", "xu_bin", {"worker_count": 4, "worker_register": "doc:workers-2-1101",
                                        "pass_numbers": "ZX-201..ZX-204", "passes_valid_until": "2025-10-31"})
    d.act(r, "register_tools", "xu_bin", {"tools": "电锤2台、切割机1台", "tools_carrier": "刘工"})
    yield d.at("09-23 12:35")
    d.act(r, "record_violation", "xu_bin", {"violation_kind": "noise", "violation_description": "午休时间电锤施工",
                                            "noise_heard_at": iso("09-23 12:30"), "work_stopped_on_site": True})
    d.note(f"装修 #{r}：保安巡逻发现午休时间电锤施工，当场制止（REN-5/6）→ 说服教育 → 经济措施 → 整改复工")
    yield d.at("09-23 14:30")
    d.act(r, "persuade", "wang_li", {"measure_details": "向业主和施工负责人说明噪音施工时段", "owner_response": "表示配合"})
    yield d.at("09-24 10:00")
    d.act(r, "economic_measure", "li_qiang", {"measure_details": "按装修协议扣违约金200元", "owner_response": "接受"})
    yield d.at("09-24 16:00")
    d.act(r, "violation_corrected", "wang_li", {"correction_verified": True, "correction_note": "复查无噪音施工"})
    yield d.at("10-13 10:00")
    d.act(r, "request_acceptance", "liu_fang", {"completed_on": "2025-10-13"})
    yield d.at("10-14 10:00")
    d.act(r, "accept_works", "wang_li", {"acceptance_passed": True, "acceptance_record": "doc:ys-2-1101",
                                         "tools_removed": True, "deposit_refund": "1800.00",
                                         "inspector_signature": "sig:王丽"})
    yield d.at("10-15 10:00")
    d.act(r, "archive", "wang_li", {"file_no": "ZX-2025-031", "application_filed": True, "agreement_filed": True,
                                    "approvals_filed": True, "inspection_records_filed": True})
    d.note(f"装修 #{r} 竣工验收合格，退押金1800元，装修档案归档（REN-7）")


@story
def renovation_patrols(d: Demo) -> Story:
    """REN-4: the steward patrols twice a workday (once on 09-25, not at all on 09-30), the team on Tue and Thu."""
    r = None
    for day in d.days("09-19", "10-11", workdays=True):
        rounds = {"09-25": ["10:00"], "09-30": []}.get(f"{day:%m-%d}", ["10:00", "15:30"])
        for hm in sorted(rounds + (["14:00"] if day.weekday() in (1, 3) else [])):
            yield d.on(day, hm)
            r = d.ids["renovation"]
            if hm == "14:00":
                d.act(r, "team_patrol", "xu_bin", {"patrol_findings": "检查队巡查：施工正常，消防器材到位"})
            else:
                d.act(r, "steward_patrol", "wang_li", {"patrol_findings": "正常施工"})
    d.note("装修巡查：09-25、09-30 管家巡查少于两次，每日18:00检查记为不足并通知主管；国庆假期不检查，10-11 调休照常（REN-4）")


@story
def renovation_team_patrol(d: Demo) -> Story:
    """REN-4: the inspection team (security, engineering, CS) patrols 2-1101 in parallel; one
    patrol is summed up, a later one still waits on engineering past its time limit."""
    yield d.at("09-23 09:00")
    p = d.start("renovation_team_patrol", "wang_li", {"unit": "2-1101", "renovation": d.ids["renovation"]}).id
    yield d.at("09-23 10:00")
    d.act(p, "security_report", "xu_bin", {"patrol_findings": "消防器材到位，通道畅通"})
    d.claim(p, "wu_gang")
    yield d.at("09-23 11:00")
    d.act(p, "engineering_report", "wu_gang", {"patrol_findings": "未改动承重墙，管线走向与方案一致"})
    yield d.at("09-23 11:30")
    d.act(p, "cs_report", "wang_li", {"patrol_findings": "建筑垃圾已装袋，按时清运"})
    yield d.at("09-23 15:00")
    d.act(p, "close", "li_qiang")
    yield d.at("10-09 09:00")
    late = d.start("renovation_team_patrol", "wang_li", {"unit": "2-1101", "renovation": d.ids["renovation"]}).id
    yield d.at("10-09 09:40")
    d.act(late, "security_report", "xu_bin", {"patrol_findings": "施工正常"})
    d.act(late, "cs_report", "wang_li", {"patrol_findings": "施工正常"})
    d.note(f"装修检查队联合巡查 #{p}：保安、工程、客服同时巡查，三方提交后主管汇总；#{late} 工程部超时未提交（REN-4）")
