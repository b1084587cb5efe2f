"""Printed notices rendered from a case (Jinja2 templates, Chinese, UTF-8 files):
the DUN-10 ladder with its 7-day pay-by dates, the door notice, the lawyer's letter only
after approval (DUN-8), the month's fee notice (FEE-2) and the repair slip (REP-3)."""
from __future__ import annotations

from pathlib import Path

import pytest

import tests.test_rules_dunning as dun
from adapters.notices import render_notice, rmb_upper
from engine.errors import InputError
from engine.timeskip import skip_days
from tests.case_helpers import clock, engine, runner, t  # noqa: F401  (fixtures)


@pytest.mark.parametrize("amount, text", [
    ("1280.00", "壹仟贰佰捌拾元整"), ("10050", "壹万零伍拾元整"), ("100000", "壹拾万元整"),
    ("1000001.5", "壹佰万零壹元伍角整"), ("0.05", "伍分"), ("1280.05", "壹仟贰佰捌拾元零伍分"),
    ("100010000", "壹亿零壹万元整"), ("0", "零元整"),
])
def test_amounts_are_printed_in_capital_numerals(amount: str, text: str) -> None:
    assert rmb_upper(amount) == text


def test_dun10_ladder_notices_ask_for_payment_within_seven_days_of_issue(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = dun.open_case(engine, posted="2026-02-02T09:00", period="2026-02", monthly_ladder=True)
    skip_days(engine, t("2026-02-02T23:59"), t("2026-02-28T23:59"))
    first = render_notice(engine, c.id, "notice_1", tmp_path).read_text(encoding="utf-8")
    assert "催费通知书" in first and "2026年2月 物业服务费至本月15日尚未缴纳" in first
    assert "1,280.00 元（大写：壹仟贰佰捌拾元整）" in first
    assert "7 日内，即\n2026年2月23日 前缴纳" in first and "2026年2月16日" in first
    assert "管家：陈静    联系电话：13800000012" in first
    final = (tmp_path / render_notice(engine, c.id, "final_notice", tmp_path).name).read_text(encoding="utf-8")
    assert "最后催费通知书" in final and "滞纳金" in final and "2026年3月7日 前缴清" in final  # 28 Feb + 7


def test_dun5_door_notice_rendered_through_the_cli(engine, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    c = dun.in_ledger(engine)
    res = runner.invoke(main, ["notice", "render", str(c.id), "door_notice", "--out", str(tmp_path / "out"),
                               "--at", "2025-09-29T15:00:00+08:00"])
    assert res.exit_code == 0, res.output
    path = Path(res.stdout.strip())
    assert path.name == f"dunning-{c.id}-door_notice-3-1201.txt"
    text = path.read_text(encoding="utf-8")
    assert "催费通知单" in text and "尊敬的 3-1201 业主（王先生）" in text and "2025年9月 物业服务费" in text
    assert text.rstrip().endswith(f"（单号：{c.id}）") and "2025年9月29日" in text
    res = runner.invoke(main, ["notice", "render", str(c.id), "fee_notice", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "fee_cycle" in res.stderr


def test_dun8_lawyers_letter_only_after_review_and_approval(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = dun.refusing_case(engine)
    with pytest.raises(InputError, match="DUN-8"):
        render_notice(engine, c.id, "lawyer_letter", tmp_path)
    c = dun.lawyer_letter_sent(engine)
    text = render_notice(engine, c.id, "lawyer_letter", tmp_path).read_text(encoding="utf-8")
    assert "律 师 函" in text and "    某某律师事务所受山水庭苑物业服务单位委托" in text
    assert "累计 4 次" in text and "2025年10月17日 前缴清" in text and "审批：钱国" in text


def test_fee2_fee_notice_lists_the_months_charges(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("fee_cycle", "lin_cai", {"unit": "3-1201", "owner_name": "王先生", "period": "2025-10",
                     "management_fee": "300.00", "water_usage": 12, "water_unit_price": "3.50", "service_fees": "110.00",
                     "service_slip_refs": "维修单 #7", "other_fees": "0", "payment_method": "cash",
                     "due_date": "2025-10-15"}, at=t("2025-10-01T09:00"))
    text = render_notice(engine, c.id, "fee_notice", tmp_path, issued_at=t("2025-10-05T09:00")).read_text(encoding="utf-8")
    assert "收费通知单" in text and "2025年10月" in text and "水费（12 吨 × 3.50 元/吨）" in text
    assert "合计                               452.00" in text and "肆佰伍拾贰元整" in text
    assert "请于 2025年10月15日 前" in text and "2025年10月5日" in text


def test_rep3_repair_slip_carries_items_time_materials_costs_and_signature(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = engine.start("repair", "liu_fang", {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678",
                     "content": "水龙头漏水"}, at=t("2025-10-09T09:00"))
    for action, staff, data in [
            ("dispatch", "liu_fang", {}),
            ("confirm_on_site", "wu_gang", {"site_findings": "龙头损坏", "needs_fee": True}),
            ("set_fee", "wu_gang", {"fee_amount": "110.00", "fee_basis": "龙头+人工"}),
            ("approve_fee", "zhang_hua", {}),
            ("finish_repair", "wu_gang", {"repair_items": "更换水龙头", "work_started_at": "2025-10-09T14:00:00+08:00",
                                          "work_finished_at": "2025-10-09T14:40:00+08:00", "materials": "水龙头 1 个",
                                          "material_cost": "80.00", "labour_cost": "30.00",
                                          "owner_signature": "sig://3-1201/20251009"})]:
        r = engine.advance(r.id, action, staff, data, at=t("2025-10-09T15:00"))
    text = render_notice(engine, r.id, "repair_slip", tmp_path).read_text(encoding="utf-8")
    assert "维修单" in text and "维修项目：更换水龙头" in text and "材料清单：水龙头 1 个" in text
    assert "材料费用：80.00 元    人工费用：30.00 元" in text and "壹佰壹拾元整" in text
    assert "业主签字确认：sig://3-1201/20251009" in text and "维修人员：吴刚" in text
