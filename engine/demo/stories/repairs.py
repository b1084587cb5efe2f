"""Repairs (REP): free and paid repairs, items outside the list, repairs over the holiday."""
from __future__ import annotations


from engine.demo.player import Demo, Story
from engine.demo.stories.common import callback, iso, live_call, owner, repair_done, story


@story
def kitchen_tap(d: Demo) -> Story:
    """REP-1, 2, 4 and CBK-3, 6: a repair by phone, fixed the same morning; the callback is redone."""
    yield d.at("09-15 10:12")
    call = yield from live_call(d, "liu_fang", "1-0101", "厨房水龙头漏水", "repair")
    r = d.ids["repair_tap"] = call.children[0]
    d.note(f"电话报修 #{r}：1-0101 厨房水龙头漏水，刘芳受理并派工程部")
    yield d.at("09-15 10:20")
    d.act(r, "dispatch", "liu_fang")
    yield d.at("09-15 10:40")
    yield from repair_done(d, r, "wu_gang", "更换厨房水龙头阀芯")
    yield d.at("09-15 14:00")
    done = d.act(r, "inform_owner", "liu_fang", {"inform_method": "phone"})
    cb = done.children[0]
    yield d.at("09-17 10:00")
    d.act(cb, "record_callback", "li_qiang", {"method": "phone", "satisfaction": "satisfied", "callback_notes": "已回访"})
    d.act(cb, "redo", "li_qiang")
    d.note(f"回访 #{cb} 记录过于简单，主管退回重新回访（CBK-3）")
    yield from callback(d, cb, "09-17 15:00", notes="水龙头使用正常，维修人员守时，业主满意")


@story
def paid_cistern_repair(d: Demo) -> Story:
    """REP-3: a paid repair: engineering sets the fee, the director approves, the owner signs the slip."""
    yield d.at("09-17 09:40")
    r = d.start("repair", "zhou_min", {**owner("8-0201"), "channel": "visit", "content": "卫生间马桶水箱进水阀损坏"}).id
    d.act(r, "dispatch", "zhou_min")
    yield d.at("09-17 10:30")
    d.claim(r, "zheng_bo")
    d.act(r, "confirm_on_site", "zheng_bo", {"site_findings": "进水阀老化损坏，需更换", "needs_fee": True})
    yield d.at("09-17 10:40")
    d.act(r, "set_fee", "zheng_bo", {"fee_amount": "95.00", "fee_basis": "进水阀 60 元，人工 35 元"})
    yield d.at("09-17 11:20")
    d.act(r, "approve_fee", "zhang_hua", {"fee_decision_note": "同意"})
    yield d.at("09-17 14:00")
    d.act(r, "finish_repair", "zheng_bo", {
        "repair_items": "更换马桶水箱进水阀", "work_started_at": iso("09-17 13:30"), "work_finished_at": iso("09-17 14:00"),
        "materials": "进水阀 1 个", "material_cost": "60.00", "labour_cost": "35.00",
        "owner_signature": "sig:8-0201-20250917"})
    d.notice(r, "repair_slip")
    d.note(f"有偿维修 #{r}：8-0201 费用 95 元经管理处主任审批，业主签字维修单（REP-3），打印维修单")
    yield d.at("09-17 15:00")
    done = d.act(r, "inform_owner", "zhou_min", {"inform_method": "visit", "fee_settlement": "monthly_bill"})
    yield from callback(d, done.children[0], "09-19 11:00")


@story
def balcony_rack_out_of_list(d: Demo) -> Story:
    """REP-2: a request outside the repair-items list is reviewed and declined."""
    yield d.at("09-24 14:00")
    r = d.start("repair", "liu_fang", {**owner("2-0801"), "channel": "phone", "content": "阳台加装升降晾衣架",
                                       "in_service_list": False}).id
    d.act(r, "refer_for_review", "liu_fang")
    yield d.at("09-25 10:00")
    d.act(r, "decline_out_of_list", "feng_tao", {"review_opinion": "属业主自行加装项目，不在维修服务范围"})
    yield d.at("09-25 10:30")
    d.act(r, "inform_declined", "liu_fang", {"inform_method": "phone", "inform_note": "已推荐有资质的安装单位"})


@story
def light_over_the_holiday(d: Demo) -> Story:
    """REP-4: reported before the holiday, chased by the front desk, repaired on the first workday after it."""
    yield d.at("09-30 17:40")
    call = yield from live_call(d, "liu_fang", "4-0301", "客厅吊灯不亮", "repair")
    r = call.children[0]
    yield d.at("09-30 17:45")
    d.act(r, "dispatch", "liu_fang")
    yield d.at("10-09 09:00")
    d.act(r, "follow_up", "liu_fang", {"follow_up_note": "业主节后来电催问，请今日上门"})
    yield d.at("10-09 09:30")
    yield from repair_done(d, r, "wu_gang", "更换客厅吊灯镇流器")
    yield d.at("10-09 11:00")
    done = d.act(r, "inform_owner", "liu_fang", {"inform_method": "phone"})
    d.note(f"报修 #{r}：09-30 17:40 报修，节后首日跟进催办并修复（REP-4）")
    yield from callback(d, done.children[0], "10-10 16:00")


@story
def tap_again(d: Demo) -> Story:
    """REP-5: the same fault again: the first receiver follows it."""
    yield d.at("10-10 09:00")
    r = d.start("repair", "zhou_min", {**owner("1-0101"), "channel": "phone", "content": "厨房水龙头又漏水",
                                       "repeat_of": d.ids["repair_tap"], "first_receiver": "liu_fang"}).id
    d.act(r, "dispatch", "liu_fang")
    d.note(f"重复报修 #{r}：1-0101 水龙头又漏水，由首次受理人刘芳跟进（REP-5）")
    yield d.at("10-10 10:00")
    yield from repair_done(d, r, "zheng_bo", "更换整个厨房水龙头")
    yield d.at("10-10 14:00")
    d.act(r, "inform_owner", "liu_fang", {"inform_method": "phone"})


@story
def door_lock_still_open(d: Demo) -> Story:
    """REP-1: a request on the last afternoon, still with engineering when the month ends."""
    yield d.at("10-15 15:00")
    r = d.start("repair", "zhou_min", {**owner("5-0302"), "channel": "visit", "content": "入户门锁开启不灵"}).id
    d.act(r, "dispatch", "zhou_min")
