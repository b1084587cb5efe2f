"""The fee cycle (FEE) and dunning (DUN): charges, bank collections, each unpaid unit's case."""
from __future__ import annotations

from typing import Any

from engine.demo.player import DATA, Demo, Story
from engine.demo.stories.common import iso, owner, story


# unit, management fee (by contract), water (t, by the month-end reading), payment method
HOUSEHOLDS = [
    ("1-0101", "280.00", 10, "bank_debit"), ("1-1202", "336.00", 14, "cash"), ("2-0502", "252.00", 8, "bank_debit"),
    ("2-0801", "364.00", 12, "cash"), ("3-0502", "308.00", 11, "bank_debit"), ("4-0301", "280.00", 9, "cash"),
    ("4-1002", "392.00", 16, "cash"), ("5-0602", "336.00", 6, "bank_debit"), ("5-1101", "280.00", 10, "cash"),
    ("6-0303", "308.00", 13, "cash"), ("6-1102", "364.00", 15, "bank_debit"), ("7-1501", "420.00", 18, "cash"),
    ("8-0201", "252.00", 7, "bank_debit"), ("8-0902", "308.00", 12, "cash"),
]
PAID_FIRST = {"1-0101", "2-0502", "8-0201"}     # the bank collected them on the 10th
PAID_SECOND = {"6-1102"}                        # … after the 20th


def charges(unit: str, fee: str, water: int, method: str) -> dict[str, Any]:
    data = {**owner(unit), "period": "2025-09", "management_fee": fee, "water_usage": water,
            "water_unit_price": "3.50", "service_fees": "0", "other_fees": "0", "payment_method": method}
    if unit == "8-0201":                        # a paid repair of August, on the owner-signed slip
        data.update(service_fees="110.00", service_slip_refs="维修单 2025-08-0117")
    if method != "bank_debit":
        data["due_date"] = "2025-09-20"
    return data


def collection(d: Demo, fid: int, n: int, paid: bool) -> dict[str, Any]:
    if not paid:
        return {"collected_amount": "0", "collection_note": "账户余额不足，托收失败"}
    return {"collected_amount": d.show(fid).data["remaining"], "bank_reference": f"TS{d.now:%Y%m%d}{n:03d}",
            "receipt_no": f"PJ{d.now:%Y%m%d}{n:03d}"}


def handed_to_dunning(d: Demo) -> list[str]:
    """Register the dunning cases the cycles spawned (``dun:<unit>``); the units newly handed over."""
    new = []
    for unit, *_ in HOUSEHOLDS:
        fee = d.show(d.ids[f"fee:{unit}"])
        if fee.children and f"dun:{unit}" not in d.ids:
            d.ids[f"dun:{unit}"] = fee.children[0]
            new.append(unit)
    return new


@story
def september_fee_cycle(d: Demo) -> Story:
    """FEE-1..5, DUN-11: 14 households: charges on the 1st, notices on the 5th, bank collections on the 10th
    and after the 20th, the cycle closes on the 30th and hands what is unpaid to dunning."""
    yield d.at("09-01 09:00")
    for unit, fee, water, method in HOUSEHOLDS:
        d.ids[f"fee:{unit}"] = d.start("fee_cycle", "lin_cai", charges(unit, fee, water, method)).id
    d.note(f"9月收费周期开账：{len(HOUSEHOLDS)} 户按合同、月底抄表、签字单据核算（FEE-1）")
    yield d.at("09-05 15:00")
    for unit, *_ in HOUSEHOLDS:
        d.act(d.ids[f"fee:{unit}"], "deliver_notice", "xu_bin", {"delivered_via": "patrol"})
    d.notice(d.ids["fee:3-0502"], "fee_notice")
    d.note("5日护管队送达收费通知单（FEE-2），集中缴费一周开始（DUN-1）；7日托收户短信提醒（DUN-11）")
    yield d.at("09-10 16:00")
    bank = [u for u, *_, method in HOUSEHOLDS if method == "bank_debit"]
    for n, unit in enumerate(bank, 1):
        d.act(d.ids[f"fee:{unit}"], "first_bank_collection", "lin_cai", collection(d, d.ids[f"fee:{unit}"], n,
                                                                                  unit in PAID_FIRST))
    d.note(f"10日第一次银行托收：{len(PAID_FIRST)}/{len(bank)} 户成功，失败清单交主任助理（FEE-3）")
    yield d.at("09-11 10:00")
    for unit in bank:
        if unit not in PAID_FIRST:
            d.act(d.ids[f"fee:{unit}"], "contact_unpaid", "zhang_hua", {
                "fee_contact_means": "phone", "fee_contact_result": "已提醒业主存足余额，20日后第二次托收"})
    yield d.at("09-22 10:00")
    for n, unit in enumerate(bank, 1):
        if unit not in PAID_FIRST:
            d.act(d.ids[f"fee:{unit}"], "second_bank_collection", "lin_cai",
                  collection(d, d.ids[f"fee:{unit}"], n, unit in PAID_SECOND))
    d.note(f"22日第二次银行托收，仍未缴清转入催缴：{'、'.join(handed_to_dunning(d))}（FEE-4/5）")
    yield d.at("10-01 09:00")
    d.note(f"09-30 18:00 收费周期结束（定时任务），未缴户转入催缴：{'、'.join(handed_to_dunning(d))}（FEE-5）")


def call(reached: str, result: str, means: str = "phone", **more: Any) -> dict[str, Any]:
    return {"contact_means": means, "owner_reached": reached, "contact_result": result, **more}


@story
def dunning_3_0502_b_then_a_then_paid(d: Demo) -> Story:
    """DUN-3..5, 12: first call after the deadline (the make-up Sunday counted), B with a door notice, A, paid."""
    yield d.at("09-29 09:30")
    c = d.ids["dun:3-0502"]
    d.act(c, "classify_b", "chen_jing", call("no_answer", "无人接听"))
    d.note(f"催缴 #{c} 3-0502：09-22 列入台账，首次电话应在5个工作日内（含09-28周日调休）即 09-28 18:00 前，09-29 才打——超时")
    yield d.at("09-30 10:30")
    d.act(c, "record_contact", "chen_jing", call("notice_only", "入户门张贴催费通知单", "door_notice"))
    d.notice(c, "door_notice")
    yield d.at("10-09 10:20")
    d.act(c, "classify_a", "chen_jing", call("reached", "业主节后回来，承诺10月13日转账", promised_date="2025-10-13",
                                             promise_kind="pay_by_date"))
    yield d.at("10-11 10:00")
    d.act(c, "record_contact", "chen_jing", call("reached", "承诺日前一工作日（10-11 周六调休）电话提醒"))


@story
def dunning_5_0602_away_pays_part(d: Demo) -> Story:
    """DUN-5 D, DUN-12: away in Shenzhen, guided to remote payment; a partial payment keeps the rest in dunning."""
    yield d.at("09-23 10:00")
    c = d.ids["dun:5-0602"]
    d.act(c, "classify_d", "zhao_lei", call("reached", "业主在深圳工作，年底回来", away_location="深圳"))
    yield d.at("09-25 10:30")
    d.act(c, "record_contact", "zhao_lei", call("reached", "已微信发送缴费二维码，引导转账", "wechat"))
    yield d.at("09-29 10:30")
    d.act(c, "record_contact", "zhao_lei", call("reached", "业主称10月中旬补缴余款"))
    yield d.at("10-10 10:30")
    d.act(c, "record_contact", "zhao_lei", call("no_answer", "无人接听"))


@story
def dunning_1_1202_promise_lapsed(d: Demo) -> Story:
    """DUN-5 A: a promise not kept sends the unit back to B; a new promise, kept at the front desk."""
    yield d.at("10-09 10:00")
    c = d.ids["dun:1-1202"]
    d.act(c, "classify_a", "wang_li", call("reached", "约定10月10日晚入户收取", promised_date="2025-10-10",
                                           promise_kind="collection_visit"))
    yield d.at("10-10 19:30")
    d.act(c, "record_contact", "wang_li", call("not_home", "按约定时间上门，家中无人", "visit"))
    yield d.at("10-11 10:30")
    d.act(c, "classify_a", "wang_li", call("reached", "业主致歉，承诺10月14日到前台缴费", promised_date="2025-10-14",
                                           promise_kind="pay_by_date"))
    d.note(f"催缴 #{c} 1-1202：A类承诺 10-10 未兑现，10-11 00:00 自动转B类；当天再次联系，重新承诺 10-14")
    yield d.at("10-14 10:00")
    d.act(c, "record_payment", "liu_fang", {"payment_amount": "385.00", "payment_channel": "front_desk",
                                            "payment_reference": "SJ20251014002"})
    d.note(f"催缴 #{c} 1-1202：业主到前台缴清 385.00 元，结案（DUN-12）")


@story
def dunning_2_0801_unreachable(d: Demo) -> Story:
    """DUN-5 C: an empty number: home visit, door notice, a new number from a neighbour."""
    yield d.at("10-09 10:40")
    c = d.ids["dun:2-0801"]
    d.act(c, "classify_c", "wang_li", call("empty_number", "空号"))
    yield d.at("10-09 15:00")
    d.act(c, "record_contact", "wang_li", call("not_home", "入户催缴，家中无人", "visit"))
    d.act(c, "record_contact", "wang_li", call("notice_only", "入户门张贴催费通知单", "door_notice"))
    yield d.at("10-10 11:00")
    d.act(c, "record_contact", "wang_li", call("not_home", "经邻居取得业主新号码", "visit", new_contact="13602020801"))


@story
def dunning_4_1002_promises(d: Demo) -> Story:
    """DUN-5 A: a near-term payer."""
    yield d.at("10-10 09:40")
    d.act(d.ids["dun:4-1002"], "classify_a", "chen_jing", call("reached", "业主承诺10月20日发工资后缴纳",
                                                               promised_date="2025-10-20", promise_kind="pay_by_date"))


@story
def dunning_6_0303_special(d: Demo) -> Story:
    """DUN-5 E: refuses over service (the lift complaint); the supervisor directs the measures."""
    yield d.at("10-09 11:00")
    c = d.ids["dun:6-0303"]
    d.act(c, "classify_e", "zhao_lei", call("reached", "电梯一周两次困人，问题不解决不交费", refusal_reason="service"))
    yield d.at("10-09 14:00")
    d.act(c, "direct_measures", "li_qiang", {"supervisor_measures": "先处理好电梯投诉并答复，再上门沟通缴费"})
    yield d.at("10-13 10:30")
    d.act(c, "record_contact", "zhao_lei", call("reached", "已告知控制板月底前更换，业主表示考虑", "visit"))


@story
def dunning_7_1501_daily_calls(d: Demo) -> Story:
    """DUN-5 B: phone off, called every workday, door notice."""
    yield d.at("10-09 09:40")
    c = d.ids["dun:7-1501"]
    d.act(c, "classify_b", "sun_yan", call("phone_off", "关机"))
    for when, reached, result in (("10-10 10:15", "no_answer", "无人接听"), ("10-11 10:15", "phone_off", "关机"),
                                  ("10-13 10:15", "reached", "业主称资金紧张，暂无法确定缴费时间"),
                                  ("10-14 10:15", "no_answer", "无人接听")):
        yield d.at(when)
        d.act(c, "record_contact", "sun_yan", call(reached, result))
    yield d.at("10-14 10:30")
    d.act(c, "record_contact", "sun_yan", call("notice_only", "入户门张贴催费通知单", "door_notice"))


@story
def dunning_8_0902_reassigned_and_late(d: Demo) -> Story:
    """DUN-2, DUN-3: the supervisor gives the unit to another steward; the first call comes a day late."""
    yield d.at("10-09 09:00")
    c = d.ids["dun:8-0902"]
    d.act(c, "assign_steward", "li_qiang", {"responsible_steward": "wang_li"})
    yield d.at("10-15 09:30")
    d.act(c, "classify_b", "wang_li", call("no_answer", "无人接听"))
    d.note(f"催缴 #{c} 8-0902：主管改派王丽；首次电话时限为 5 个工作日（节假日不计）即 10-14 18:00，10-15 才打——超时")


@story
def dunning_7_0802_lawyers_letter(d: Demo) -> Story:
    """DUN-5 E, DUN-7, DUN-8: June arrears carried over; refusing, senior visits in turn, a lawyer's letter, paid."""
    yield d.at("09-15 09:00")
    c = d.ids["dunning_letter"] = d.ids["dun:7-0802"] = d.start("dunning", "li_qiang", {
        **owner("7-0802"), "period": "2025-06", "amount_due": "1320.00", "notices_posted_at": iso("06-05 15:00")}).id
    d.note(f"催缴 #{c} 7-0802 韩磊：6月物业费 1320 元结转入本月台账 → 孙燕")
    yield d.at("09-15 10:30")
    d.act(c, "classify_e", "sun_yan", call("reached", "车位纠纷未解决，拒交物业费", refusal_reason="developer"))
    yield d.at("09-15 14:00")
    d.act(c, "direct_measures", "li_qiang", {"supervisor_measures": "向开发商了解车位纠纷进展，同时每日催缴"})
    yield d.at("09-16 10:30")
    d.act(c, "record_contact", "sun_yan", call("reached", "仍拒交"))
    yield d.at("09-17 10:30")
    d.act(c, "mark_refusing", "sun_yan", call("reached", "第三次拒交，表示等开发商答复"))
    yield d.at("09-18 10:20")
    d.act(c, "record_contact", "sun_yan", call("notice_only", "张贴催费通知单并拍照", "door_notice",
                                               notice_photo="photo://7-0802/20250918"))
    d.notice(c, "door_notice")
    yield d.at("09-18 11:00")
    d.act(c, "request_senior_visit", "sun_yan")
    for when, staff, action in (("09-18 15:00", "li_qiang", "supervisor_visit"),
                                ("09-19 15:00", "he_jun", "deputy_visit"),
                                ("09-22 16:00", "zhang_hua", "director_visit")):
        yield d.at(when)
        d.act(c, action, staff, call("reached", "上门沟通，仍拒交", "visit"))
    d.note(f"催缴 #{c}：拒缴户，客服主管、分管副经理、项目经理依次上门均未果（DUN-7）")
    yield d.at("09-23 09:30")
    d.act(c, "shortlist_letter", "li_qiang", {"shortlist_reason": "refusal", "shortlist_note": "欠费三个月，多次上门均拒交"})
    yield d.at("09-24 10:00")
    d.act(c, "review_letter", "huang_min", {"review_opinion": "材料齐全，同意"})
    yield d.at("09-25 09:30")
    d.act(c, "approve_letter", "qian_guo", {"approval_opinion": "同意发送律师函"})
    yield d.at("09-26 10:00")
    d.act(c, "send_letter", "li_qiang", {"law_firm": "广东某某律师事务所", "letter_ref": "doc:LF-2025-031",
                                         "letter_sent_via": "ems"})
    d.notice(c, "lawyer_letter")
    d.note(f"催缴 #{c}：律师函经客服部审核、总经理批准后以特快专递发出（DUN-8），打印律师函")


@story
def bank_statements(d: Demo) -> Story:
    """DUN-12: bank statements and front-desk exports (demo/bank/*.csv), imported as `sop import payments` does."""
    from adapters.payments import import_payments

    for when in ("09-09 17:30", "09-19 09:30", "09-26 17:00", "10-13 17:20"):
        yield d.at(when)
        path = DATA / "bank" / f"{d.now:%Y-%m-%d}.csv"
        result = import_payments(d.engine, path, "lin_cai")
        if result.errors:
            raise RuntimeError(f"{path}: {result.errors}")
        d.totals["payments"] += len(result.recorded)
        for r in result.recorded:
            rest = "缴清结案" if r["paid_in_full"] else f"部分缴费，尚欠 {r['remaining']} 元，继续催缴"
            unit = d.show(r["instance"]).data["unit"]
            d.note(f"银行对账单 {path.name}：{unit} {r['amount']} 元入 {r['procedure']} #{r['instance']}（{rest}）")


@story
def dunning_supervision(d: Demo) -> Story:
    """DUN-6: every workday at 17:40 the supervisor reviews the day's calls; Fridays at 16:30 the weekly summary."""
    def cases() -> list[int]:
        return [iid for key, iid in sorted(d.ids.items()) if key.startswith("dun:")]

    for day in d.days(workdays=True):
        if day.weekday() == 4:
            yield d.on(day, "16:30")
            for iid in cases():
                c = d.show(iid)
                if c.active and c.state != "collective_period":
                    d.act(iid, "weekly_summary", "li_qiang", {
                        "week_summary": f"累计催缴 {c.data['contact_count']} 次，{c.data.get('dunning_class') or '未分类'}类",
                        "next_week_plan": "按分类继续跟进"})
        yield d.on(day, "17:40")
        for iid in cases():
            c = d.show(iid)
            if c.active and str(c.data.get("last_contact_at", "")).startswith(day.isoformat()):
                d.act(iid, "supervisor_review", "li_qiang", {"review_note": "已审阅当日催缴记录"})
